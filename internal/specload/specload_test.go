package specload

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/conflictcheck/conflictcheck/internal/xconflict"
	"github.com/conflictcheck/conflictcheck/openapi"
	"github.com/getkin/kin-openapi/openapi3"
)

const referencePath = "../../openapi/reference.yaml"

func mustLoad(t *testing.T, source string, opts Options) *Document {
	t.Helper()
	doc, err := Load(context.Background(), source, opts)
	if err != nil {
		t.Fatalf("Load(%s): %v", source, err)
	}
	return doc
}

// loadErr loads source, which must fail, and returns the one-line message.
func loadErr(t *testing.T, source string, opts Options) string {
	t.Helper()
	_, err := Load(context.Background(), source, opts)
	if err == nil {
		t.Fatalf("Load(%s) succeeded, want an error", source)
	}
	return oneLineError(t, source, err)
}

// oneLineError checks that err, Load's error for source, is an *Error of one line, and
// returns its message.
func oneLineError(t *testing.T, source string, err error) string {
	t.Helper()
	var le *Error
	if !errors.As(err, &le) {
		t.Errorf("Load(%s) error is a %T, want *Error", source, err)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\r") {
		t.Errorf("Load(%s) error spans several lines: %q", source, msg)
	}
	return msg
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func ids(ops []Operation) []string {
	var out []string
	for _, o := range ops {
		out = append(out, o.ID)
	}
	return out
}

func TestLoadReference(t *testing.T) {
	doc := mustLoad(t, referencePath, Options{})
	if doc.Version != "3.0.3" || doc.Source != referencePath {
		t.Errorf("Version, Source = %q, %q", doc.Version, doc.Source)
	}
	wantOps := []string{"createItem", "listItems", "getItem", "replaceItem", "patchItem", "deleteItem",
		"createOrder", "getOrder", "cancelOrder", "shipOrder"}
	if got := ids(doc.Operations); !slices.Equal(got, wantOps) {
		t.Errorf("Operations = %v, want document order %v", got, wantOps)
	}
	if o := doc.Operations[3]; o.Method != "PUT" || o.Path != "/items/{id}" || o.Op != o.Item.Put || o.Op.OperationID != "replaceItem" {
		t.Errorf("Operations[3] = %s %s %p (item.Put %p)", o.Method, o.Path, o.Op, o.Item.Put)
	}
	wantConflicts := map[string][]xconflict.Kind{
		"createItem":  {xconflict.DuplicateCreate},
		"replaceItem": {xconflict.StaleUpdate},
		"patchItem":   {xconflict.StaleUpdate},
		"deleteItem":  {xconflict.DeleteInUse},
		"createOrder": {xconflict.IdempotencyKey, xconflict.Capacity},
		"cancelOrder": {xconflict.Transition},
	}
	got := map[string][]xconflict.Kind{}
	for id, cs := range doc.Conflicts {
		for _, c := range cs {
			got[id] = append(got[id], c.Kind)
		}
	}
	if !reflect.DeepEqual(got, wantConflicts) {
		t.Errorf("Conflicts kinds = %v, want %v", got, wantConflicts)
	}
	cap := doc.Conflicts["createOrder"][1]
	if cap.Invariant == nil || cap.Invariant.Read != "getItem" || cap.Invariant.Field != "/stock" || *cap.Invariant.Min != 0 {
		t.Errorf("createOrder capacity invariant = %+v", cap.Invariant)
	}
	if v := doc.Conflicts["replaceItem"][0].Version; v == nil || v.Header != "ETag" {
		t.Errorf("replaceItem version = %+v", v)
	}
	// References are resolved.
	item := doc.T.Paths.Value("/items").Post.RequestBody.Value.Content["application/json"].Schema.Value
	if item == nil || item.Properties["sku"] == nil {
		t.Errorf("createItem's request schema is not resolved: %+v", item)
	}
}

// TestLoadMatchesKinOpenAPI checks that the loader's own parsing (JSON straight to nodes, YAML
// normalized) yields the document kin-openapi's loader builds, in YAML and in JSON.
func TestLoadMatchesKinOpenAPI(t *testing.T) {
	kinDoc, err := openapi3.NewLoader().LoadFromData(openapi.Reference)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(kinDoc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var indented bytes.Buffer
	if err := json.Indent(&indented, want, "", "  "); err != nil {
		t.Fatal(err)
	}
	for name, source := range map[string]string{
		"yaml": referencePath,
		"json": writeFile(t, dir, "reference.json", indented.String()),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := json.Marshal(mustLoad(t, source, Options{}).T)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("the loaded document differs from kin-openapi's (%d vs %d bytes)", len(got), len(want))
			}
		})
	}
}

func TestLoadSwagger2(t *testing.T) {
	doc := mustLoad(t, "testdata/swagger2.yaml", Options{})
	if doc.Version != "2.0" || doc.T.OpenAPI == "" {
		t.Errorf("Version %q, converted to %q", doc.Version, doc.T.OpenAPI)
	}
	if got, want := ids(doc.Operations), []string{"createPet", "getPet", "deletePet"}; !slices.Equal(got, want) {
		t.Errorf("Operations = %v, want %v", got, want)
	}
	if got := doc.T.Servers; len(got) != 1 || got[0].URL != "https://pets.example.invalid/v1" {
		t.Errorf("servers = %v", got)
	}
	create := doc.T.Paths.Value("/pets").Post
	if create.RequestBody == nil || create.RequestBody.Value.Content["application/json"] == nil {
		t.Errorf("createPet has no JSON request body")
	}
	// The document's produces applies to operations without their own.
	if c := create.Responses.Value("201").Value.Content; c["application/json"] == nil || c["application/json"].Schema.Value.Properties["name"] == nil {
		t.Errorf("createPet 201 content = %v, want application/json with a resolved Pet", c)
	}
	if c := doc.T.Paths.Value("/pets/{id}").Delete.Responses.Value("409").Value.Content; c["application/xml"] == nil || c["application/json"] != nil {
		t.Errorf("deletePet 409 content = %v, want only its own application/xml", c)
	}
	if cs := doc.Conflicts["createPet"]; len(cs) != 1 || cs[0].Kind != xconflict.DuplicateCreate || cs[0].Read != "getPet" {
		t.Errorf("createPet conflicts = %+v", cs)
	}
}

// TestLoadLooksLikeJSON loads documents whose first byte misleads: YAML in flow style, which
// starts with "{", and JSON after a byte order mark. Swagger 2.0 is decoded from JSON only.
func TestLoadLooksLikeJSON(t *testing.T) {
	dir := t.TempDir()
	const paths = `"/pets": {"post": {"operationId": "createPet", "responses": {"201": {"description": "created"}}}}`
	for name, content := range map[string]string{
		"swagger2-flow.yaml": `{swagger: "2.0", info: {title: t, version: "1"}, paths: {` + paths + `}}`,
		"openapi3-flow.yaml": `{openapi: 3.0.3, info: {title: t, version: "1"}, paths: {` + paths + `}}`,
		"swagger2-bom.json":  "\xef\xbb\xbf" + `{"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {` + paths + `}}`,
	} {
		t.Run(name, func(t *testing.T) {
			doc := mustLoad(t, writeFile(t, dir, name, content), Options{})
			if got := ids(doc.Operations); !slices.Equal(got, []string{"createPet"}) {
				t.Errorf("Operations = %v, want [createPet]", got)
			}
		})
	}
}

func TestLoadOpenAPI31(t *testing.T) {
	doc := mustLoad(t, "testdata/openapi31.yaml", Options{})
	if doc.Version != "3.1.0" {
		t.Errorf("Version = %q", doc.Version)
	}
	if got, want := ids(doc.Operations), []string{"createPet", "getPet"}; !slices.Equal(got, want) {
		t.Errorf("Operations = %v, want %v (components.pathItems resolved)", got, want)
	}
	// A $ref to a schema's $id points at that schema.
	get := doc.T.Paths.Value("/pets/{id}").Get
	pet := get.Responses.Value("200").Value.Content["application/json"].Schema.Value
	if pet == nil || pet.Properties["name"] == nil || !pet.Type.Includes("null") {
		t.Errorf("the $id reference resolved to %+v", pet)
	}
	name := get.Responses.Value("404").Value.Content["application/json"].Schema.Value
	if name == nil || !name.Type.Is("string") {
		t.Errorf("the $id reference with a fragment resolved to %+v", name)
	}
	if cs := doc.Conflicts["createPet"]; len(cs) != 1 {
		t.Errorf("createPet conflicts = %+v", cs)
	}
}

func TestLoadSplitSpec(t *testing.T) {
	doc := mustLoad(t, "testdata/refs/spec.yaml", Options{})
	post := doc.T.Paths.Value("/items").Post
	item := post.Responses.Value("201").Value.Content["application/json"].Schema.Value
	if item == nil || len(item.AllOf) != 2 {
		t.Fatalf("Item is not resolved: %+v", item)
	}
	if owner := item.AllOf[1].Value.Properties["owner"].Value; owner == nil || owner.Properties["name"] == nil {
		t.Errorf("Item.owner (a file referenced by a referenced file) is not resolved: %+v", owner)
	}
	if r := post.Responses.Value("409"); r == nil || r.Value == nil || r.Value.Content["application/problem+json"] == nil {
		t.Errorf("the 409 response is not resolved")
	}
}

// refSpecYAML is a spec whose one response schema is the reference ref, at
// /paths/~1a/get/responses/200/content/application~1json/schema.
func refSpecYAML(ref string) string {
	return fmt.Sprintf(`openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /a:
    get:
      responses:
        "200":
          description: ok
          content: {application/json: {schema: {$ref: '%s'}}}
`, ref)
}

// TestRefsStayInTheSpecFolder covers references that leave the folder from a referenced file,
// where only the loader's reader can see them.
func TestRefsStayInTheSpecFolder(t *testing.T) {
	outside := t.TempDir()
	secret := writeFile(t, outside, "secret.yaml", "Secret: {type: string}\n")
	for _, tc := range []struct {
		name  string
		files map[string]string
		link  string // a symlink in the spec folder to the secret
		want  string
	}{
		{"from a referenced file", map[string]string{
			"spec.yaml":      refSpecYAML("schemas/a.yaml#/A"),
			"schemas/a.yaml": "A: {$ref: '../../" + filepath.Base(outside) + "/secret.yaml#/Secret'}\n"},
			"", "outside the spec's folder"},
		{"absolute from a referenced file", map[string]string{
			"spec.yaml":      refSpecYAML("schemas/a.yaml#/A"),
			"schemas/a.yaml": "A: {$ref: '" + secret + "#/Secret'}\n"},
			"", "outside the spec's folder"},
		{"through a symlink", map[string]string{"spec.yaml": refSpecYAML("link.yaml#/Secret")},
			"link.yaml", "link to outside the spec's folder"},
		{"missing file", map[string]string{"spec.yaml": refSpecYAML("nope.yaml#/X")}, "", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(filepath.Dir(outside), "spec-"+strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			for name, content := range tc.files {
				writeFile(t, dir, name, content)
			}
			if tc.link != "" {
				if err := os.Symlink(secret, filepath.Join(dir, tc.link)); err != nil {
					t.Skipf("no symlinks here: %v", err)
				}
			}
			msg := loadErr(t, filepath.Join(dir, "spec.yaml"), Options{})
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
			if tc.link == "" && tc.name != "missing file" {
				// Allowed, the same spec loads.
				mustLoad(t, filepath.Join(dir, "spec.yaml"), Options{AllowRemoteRefs: true})
			}
		})
	}
}

// countingServer serves files and counts the requests for each path.
func countingServer(t *testing.T, files map[string]string) (*httptest.Server, map[string]*atomic.Int64) {
	t.Helper()
	hits := map[string]*atomic.Int64{}
	for p := range files {
		hits[p] = &atomic.Int64{}
	}
	var other atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok {
			other.Add(1)
			http.NotFound(w, r)
			return
		}
		hits[r.URL.Path].Add(1)
		w.Header().Set("Content-Type", "application/yaml")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	hits["other"] = &other
	return srv, hits
}

func TestRemoteRefsAreNeverFetched(t *testing.T) {
	srv, hits := countingServer(t, map[string]string{"/item.yaml": "Item: {type: object, properties: {sku: {type: string}}}\n"})
	dir := t.TempDir()
	for _, ref := range []string{srv.URL + "/item.yaml#/Item", "//" + strings.TrimPrefix(srv.URL, "http://") + "/item.yaml#/Item"} {
		spec := writeFile(t, dir, "spec.yaml", refSpecYAML(ref))
		msg := loadErr(t, spec, Options{})
		if !strings.Contains(msg, ref) || !strings.Contains(msg, "refused") || !strings.Contains(msg, "/paths/~1a/get/responses/200/content/application~1json/schema") {
			t.Errorf("error %q does not name the refused reference and where it is", msg)
		}
		if n := hits["/item.yaml"].Load() + hits["other"].Load(); n != 0 {
			t.Fatalf("the server was contacted %d times without AllowRemoteRefs", n)
		}
	}
	spec := filepath.Join(dir, "spec.yaml")
	writeFile(t, dir, "spec.yaml", strings.Replace(mustRead(t, spec), "'//", "'http://", 1))
	doc := mustLoad(t, spec, Options{AllowRemoteRefs: true})
	s := doc.T.Paths.Value("/a").Get.Responses.Value("200").Value.Content["application/json"].Schema.Value
	if s == nil || s.Properties["sku"] == nil {
		t.Errorf("the allowed remote reference is not resolved: %+v", s)
	}
	if hits["/item.yaml"].Load() == 0 {
		t.Errorf("the allowed remote reference was not fetched")
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoadFromURL(t *testing.T) {
	split := strings.Replace(string(openapi.Reference), "$ref: '#/components/schemas/ItemCreate'", "$ref: 'common.yaml#/ItemCreate'", 1)
	srv, hits := countingServer(t, map[string]string{
		"/reference.yaml": string(openapi.Reference),
		"/split.yaml":     split,
		"/common.yaml":    "ItemCreate: {type: object, properties: {sku: {type: string}}}\n",
	})
	doc := mustLoad(t, srv.URL+"/reference.yaml", Options{})
	if len(doc.Conflicts) != 6 || doc.Source != srv.URL+"/reference.yaml" {
		t.Errorf("loaded from a URL: %d conflicts, source %q", len(doc.Conflicts), doc.Source)
	}

	msg := loadErr(t, srv.URL+"/split.yaml", Options{})
	if !strings.Contains(msg, `$ref "common.yaml#/ItemCreate"`) || !strings.Contains(msg, "fetched from a URL") {
		t.Errorf("error %q does not explain the refused relative reference", msg)
	}
	if n := hits["/common.yaml"].Load(); n != 0 {
		t.Fatalf("common.yaml was fetched %d times without AllowRemoteRefs", n)
	}
	doc = mustLoad(t, srv.URL+"/split.yaml", Options{AllowRemoteRefs: true})
	if s := doc.T.Paths.Value("/items").Post.RequestBody.Value.Content["application/json"].Schema.Value; s == nil || s.Properties["sku"] == nil {
		t.Errorf("the relative reference of a URL spec is not resolved")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Load(ctx, srv.URL+"/reference.yaml", Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a cancelled context: %v", err)
	}

	for _, tc := range []struct {
		source string
		opts   Options
		want   string
	}{
		{srv.URL + "/missing.yaml", Options{}, "404 Not Found"},
		{srv.URL + "/reference.yaml", Options{MaxBytes: 1000}, "larger than the 1000-byte limit"},
		{"ftp://example.invalid/spec.yaml", Options{}, `unsupported URL scheme "ftp"`},
	} {
		if msg := loadErr(t, tc.source, tc.opts); !strings.Contains(msg, tc.want) {
			t.Errorf("Load(%s): error %q does not say %q", tc.source, msg, tc.want)
		}
	}
}

func TestLoadGzip(t *testing.T) {
	dir := t.TempDir()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(openapi.Reference)
	zw.Close()
	p := writeFile(t, dir, "reference.yaml.gz", b.String())
	if doc := mustLoad(t, p, Options{}); len(doc.Conflicts) != 6 {
		t.Errorf("gzipped reference: %d conflicts", len(doc.Conflicts))
	}
	// A zip bomb stops at the cap.
	b.Reset()
	zw = gzip.NewWriter(&b)
	zeros := make([]byte, 1<<20)
	for range 64 {
		zw.Write(zeros)
	}
	zw.Close()
	p = writeFile(t, dir, "bomb.gz", b.String())
	if msg := loadErr(t, p, Options{MaxBytes: 8 << 20}); !strings.Contains(msg, "decompressed, larger than the 8 MiB limit") {
		t.Errorf("zip bomb: %s", msg)
	}
}

func TestErrorsNameTheSource(t *testing.T) {
	msg := loadErr(t, "testdata/does-not-exist.yaml", Options{})
	if want := "load spec testdata/does-not-exist.yaml: no such file"; msg != want {
		t.Errorf("error %q, want %q", msg, want)
	}
	if msg := loadErr(t, "testdata", Options{}); !strings.Contains(msg, "is a folder") {
		t.Errorf("error %q", msg)
	}
	long := &Error{Source: "x", Err: errors.New(strings.Repeat("é", 2000) + "\nsecond line")}
	if got := long.Error(); len(got) > maxMessage+40 || strings.Contains(got, "\n") || !strings.HasSuffix(got, "…") {
		t.Errorf("a long message is not cut to one short line: %d bytes", len(got))
	}
}

// TestLoadRealSpecs loads every spec of the shared corpus. The 73 MB (unpacked) deref one is
// over the default cap and must be refused in one line; BenchmarkLoadReal loads it with a
// raised cap (about 1.5 s and 1.2 GB, too heavy for a test run beside others).
func TestLoadRealSpecs(t *testing.T) {
	for _, f := range realSpecs(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if strings.HasSuffix(f, ".gz") {
				if msg := loadErr(t, f, Options{}); !strings.Contains(msg, "decompressed, larger than the 64 MiB limit") {
					t.Errorf("error %q", msg)
				}
				return
			}
			doc := mustLoad(t, f, Options{})
			if len(doc.Operations) == 0 || doc.T.Paths.Len() == 0 {
				t.Errorf("no operations")
			}
			t.Logf("%s: %s, %d paths, %d operations", filepath.Base(f), doc.Version, doc.T.Paths.Len(), len(doc.Operations))
		})
	}
}

// realSpecs lists the specs of /work/shared/specs, through a path relative to the repository.
func realSpecs(tb testing.TB) []string {
	tb.Helper()
	const dir = "../../../shared/specs"
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if ext := filepath.Ext(strings.TrimSuffix(p, ".gz")); ext == ".json" || ext == ".yaml" {
				files = append(files, p)
			}
		}
		return nil
	})
	if len(files) == 0 {
		tb.Skipf("no specs in %s (the shared corpus of large real specs is absent)", dir)
	}
	return files
}

// TestLoadBytes: an in-memory document loads like its file, and may not reach outside itself.
func TestLoadBytes(t *testing.T) {
	doc, err := LoadBytes(t.Context(), "embedded reference.yaml", openapi.Reference, Options{})
	if err != nil {
		t.Fatalf("LoadBytes(reference): %v", err)
	}
	if _, ok := doc.Operation("createItem"); !ok || len(doc.Conflicts) == 0 {
		t.Fatalf("reference loaded without createItem or x-conflict: %d conflicts", len(doc.Conflicts))
	}
	want := 1 + strings.Count(string(openapi.Reference[:bytes.Index(openapi.Reference, []byte("    post:\n      operationId: createItem"))]), "\n")
	if got := doc.Line("createItem"); got != want || doc.Line("noSuchOperation") != 0 {
		t.Errorf("Line(createItem) = %d, want %d (the post: line); Line(unknown) = %d, want 0", got, want, doc.Line("noSuchOperation"))
	}
	ext := []byte(`openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /a:
    get:
      responses:
        "200": {$ref: "other.yaml#/components/responses/ok"}
`)
	_, err = LoadBytes(t.Context(), "inline", ext, Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "load spec inline: ") {
		t.Fatalf("external ref from bytes: err = %v, want a load spec inline error", err)
	}
	if _, err := LoadBytes(t.Context(), "big", ext, Options{MaxBytes: 10}); err == nil {
		t.Fatal("a document over MaxBytes loaded")
	}
}
