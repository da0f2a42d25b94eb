package synth

import (
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestUniqueAtEach: making several members unique together, with one check, gives what making
// them one by one gives.
func TestUniqueAtEach(t *testing.T) {
	obj := openapi3.NewObjectSchema().
		WithProperty("name", openapi3.NewStringSchema()).
		WithProperty("metadata", openapi3.NewObjectSchema().WithProperty("uid", openapi3.NewStringSchema()))
	s := openapi3.NewSchemaRef("", obj)
	body := func() any {
		return map[string]any{"name": "widget", "metadata": map[string]any{"uid": "u"}}
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
}
