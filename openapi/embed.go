// Package openapi holds the documents bundled with conflictcheck: the OpenAPI
// description of the reference server and the JSON Schema of the x-conflict
// extension. It is data, not logic: each document is embedded verbatim so that
// the CLI, the reference server and the suites read one copy, and editors can
// use the files in this folder directly.
package openapi

import _ "embed"

// Reference is reference.yaml: the OpenAPI 3.0.3 document of the reference
// inventory API, the contract the reference server implements, with an
// x-conflict extension on every operation that can conflict. Callers must
// treat it as read-only.
//
//go:embed reference.yaml
var Reference []byte

// XConflictSchema is x-conflict.schema.json: the JSON Schema (draft 2020-12,
// $id "urn:conflictcheck:schema:x-conflict") of the value of an x-conflict
// extension, a conflict object or a non-empty array of them. Callers must
// treat it as read-only.
//
//go:embed x-conflict.schema.json
var XConflictSchema []byte
