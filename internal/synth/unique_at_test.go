package synth

import (
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestUniqueAtEach: making several members unique together gives what making them one by one
// gives, and a result the schema refuses is an error naming the members.
func TestUniqueAtEach(t *testing.T) {
	maxLen := uint64(12)
	obj := openapi3.NewObjectSchema().
		WithProperty("name", openapi3.NewStringSchema()).
		WithProperty("metadata", openapi3.NewObjectSchema().WithProperty("uid", openapi3.NewStringSchema())).
		WithProperty("short", &openapi3.Schema{Type: &openapi3.Types{"string"}, MaxLength: &maxLen})
	s := openapi3.NewSchemaRef("", obj)
	body := func() any {
		return map[string]any{"name": "widget", "metadata": map[string]any{"uid": "u"}, "short": "abc"}
	}

	g := New(1)
	ptrs, slots := []string{"/name", "/metadata/uid"}, []string{"a/name", "a/uid"}
	together, err := g.UniqueAtEach(s, body(), ptrs, slots)
	if err != nil {
		t.Fatal(err)
	}
	var one any = body()
	for i := range ptrs {
		if one, err = g.UniqueAt(s, one, ptrs[i], slots[i]); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(together, one) {
		t.Errorf("together %v, one by one %v", together, one)
	}
	if m := together.(map[string]any); m["name"] == "widget" || !strings.HasPrefix(m["name"].(string), "widget") {
		t.Errorf("name %v: want a unique value built on the old one", m["name"])
	}

	if _, err := g.UniqueAtEach(s, body(), ptrs, slots[:1]); err == nil {
		t.Error("pointers and slots of different lengths: no error")
	}
	// A unique value built on a long prefix breaks maxLength: the check after the members fails.
	long := map[string]any{"name": "n", "metadata": map[string]any{"uid": "u"}, "short": "abcdefghijk"}
	if _, err := g.UniqueAtEach(s, long, []string{"/name", "/short"}, []string{"b/name", "b/short"}); err == nil {
		t.Log("the generator fit the unique value within maxLength; nothing to refuse")
	} else if !strings.Contains(err.Error(), "/name, /short") {
		t.Errorf("error %q does not name the members", err)
	}
}
