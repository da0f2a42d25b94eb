package fakeapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"
)

// obj is a YAML mapping under construction.
type obj = map[string]any

// Spec is the OpenAPI 3.0 document, YAML, describing the API configured by opts: the same
// options make the server and its document, so that they agree. Options the document cannot
// tell (faults, delays, rate limits, the token's value) do not change it, but for a Token it
// declares bearer authentication. Spec does not check opts; New does.
func Spec(opts Options) string {
	s := specBuilder{&API{opts: opts}}
	b, err := yaml.Marshal(s.document())
	if err != nil {
		// Marshalling plain maps, strings, numbers and booleans cannot fail.
		return fmt.Sprintf("# fakeapi: %v\n", err)
	}
	return string(b)
}

// specBuilder builds the document of an API from the options it was made with, asking the API
// the same questions its handlers ask (where the version lives, the widget's shape).
type specBuilder struct{ *API }

func ref(kind, name string) obj { return obj{"$ref": "#/components/" + kind + "/" + name} }

func (s specBuilder) document() obj {
	doc := obj{
		"openapi": "3.0.3",
		"info": obj{
			"title":       "fakeapi widgets",
			"version":     "1.0.0",
			"description": s.description(),
		},
		"paths": obj{
			"/widgets":      s.collection(),
			"/widgets/{id}": s.item(),
		},
		"components": s.components(),
	}
	if s.opts.Token != "" {
		doc["security"] = []any{obj{"bearer": []any{}}}
	}
	return doc
}

func (s specBuilder) description() string {
	var b strings.Builder
	b.WriteString("A widgets API of conflictcheck's tests. Widgets have an id, a ")
	if s.opts.PUTCreate {
		b.WriteString("name, a color and a version; clients choose the id and create with PUT and `If-None-Match: *`.")
	} else {
		b.WriteString("unique name, a color and a version.")
	}
	if s.bodyVersion() {
		fmt.Fprintf(&b, " The version is the body member %s; an update with a stale or missing one gets 409.", s.opts.VersionField)
	} else {
		b.WriteString(" The version is the ETag; an update needs If-Match (428 without it, 412 when stale).")
	}
	return b.String()
}

// status is the document's key for a status code.
func status(code int) string { return strconv.Itoa(code) }

func (s specBuilder) createStatus() int {
	if s.opts.CreateStatus == http.StatusOK {
		return http.StatusOK
	}
	return http.StatusCreated
}

// rejections declares the rejection response for each code in rs, plus the ones every
// operation may answer.
func (s specBuilder) rejections(rs obj, codes ...int) obj {
	codes = append(codes, http.StatusTooManyRequests)
	if s.opts.Token != "" {
		codes = append(codes, http.StatusUnauthorized)
	}
	for _, c := range codes {
		switch c {
		case http.StatusTooManyRequests:
			rs[status(c)] = ref("responses", "TooManyRequests")
		case http.StatusUnauthorized:
			rs[status(c)] = ref("responses", "Unauthorized")
		default:
			rs[status(c)] = ref("responses", "Rejection")
		}
	}
	return rs
}

// widgetResponse is a response carrying a widget, with its ETag and, when location, Location.
func (s specBuilder) widgetResponse(desc string, location, body bool) obj {
	r := obj{"description": desc}
	h := obj{}
	if !s.bodyVersion() {
		h["ETag"] = ref("headers", "ETag")
	}
	if location {
		h["Location"] = ref("headers", "Location")
	}
	if len(h) > 0 {
		r["headers"] = h
	}
	if body {
		r["content"] = obj{"application/json": obj{"schema": ref("schemas", "Widget")}}
	}
	return r
}

func (s specBuilder) collection() obj {
	list := obj{
		"operationId": "listWidgets",
		"summary":     "List widgets, optionally those with a name",
		"parameters":  []any{obj{"name": "name", "in": "query", "required": false, "schema": obj{"type": "string"}}},
		"responses": s.rejections(obj{
			"200": obj{"description": "The widgets.", "content": obj{"application/json": obj{"schema": ref("schemas", "WidgetList")}}},
		}),
	}
	item := obj{"get": list}
	if s.opts.PUTCreate {
		return item
	}
	rs := obj{status(s.createStatus()): s.widgetResponse("The widget was created.", true, !s.opts.IDInLocationOnly)}
	codes := []int{http.StatusBadRequest, http.StatusUnprocessableEntity}
	if s.opts.DuplicateSeeOther {
		rs["303"] = obj{"description": "A widget with this name exists: see it.", "headers": obj{"Location": ref("headers", "Location")}}
	} else {
		codes = append(codes, http.StatusConflict)
	}
	create := obj{
		"operationId": "createWidget",
		"summary":     "Create a widget with a unique name",
		"requestBody": obj{"required": true, "content": obj{"application/json": obj{"schema": ref("schemas", "WidgetCreate")}}},
		"responses":   s.rejections(rs, codes...),
	}
	if s.opts.XConflict {
		x := obj{"kind": "duplicate-create", "key": []any{s.namePointer()}}
		if s.opts.DuplicateSeeOther {
			x["expect"] = []any{http.StatusSeeOther}
		}
		create["x-conflict"] = x
	}
	item["post"] = create
	return item
}

// namePointer is where a widget body holds its name.
func (s specBuilder) namePointer() string {
	if s.kubernetes() {
		return "/metadata/name"
	}
	return "/name"
}

func (s specBuilder) item() obj {
	get := obj{
		"operationId": "getWidget",
		"summary":     "Read a widget",
		"responses": s.rejections(obj{
			"200": s.widgetResponse("The widget.", false, true),
		}, http.StatusNotFound),
	}
	var params []any
	if !s.bodyVersion() {
		params = append(params, obj{"name": "If-Match", "in": "header", "required": !s.opts.PUTCreate,
			"description": "The widget's current ETag (strong comparison).", "schema": obj{"type": "string"}})
	}
	if s.opts.PUTCreate {
		params = append(params, obj{"name": "If-None-Match", "in": "header", "required": false,
			"description": "`*`: create the widget only if the id is free (412 otherwise).", "schema": obj{"type": "string"}})
	}
	rs := obj{"200": s.widgetResponse("The widget was replaced.", false, true)}
	codes := []int{http.StatusBadRequest, http.StatusUnprocessableEntity}
	if s.opts.PUTCreate {
		rs["201"] = s.widgetResponse("The widget was created.", true, true)
		codes = append(codes, http.StatusPreconditionFailed)
	} else {
		codes = append(codes, http.StatusNotFound)
	}
	if s.bodyVersion() {
		codes = append(codes, http.StatusConflict)
	} else {
		codes = append(codes, http.StatusPreconditionRequired)
		if !s.opts.PUTCreate {
			codes = append(codes, http.StatusPreconditionFailed)
		}
	}
	put := obj{
		"operationId": "replaceWidget",
		"summary":     "Replace a widget, conditional on its version",
		"requestBody": obj{"required": true, "content": obj{"application/json": obj{"schema": ref("schemas", "WidgetReplace")}}},
		"responses":   s.rejections(rs, codes...),
	}
	if len(params) > 0 {
		put["parameters"] = params
	}
	if s.opts.XConflict {
		put["x-conflict"] = s.replaceConflict()
	}
	del := obj{
		"operationId": "deleteWidget",
		"summary":     "Delete a widget",
		"responses":   s.rejections(obj{"204": obj{"description": "The widget was deleted."}}, http.StatusNotFound),
	}
	return obj{
		"parameters": []any{ref("parameters", "WidgetId")},
		"get":        get,
		"put":        put,
		"delete":     del,
	}
}

// replaceConflict is replaceWidget's x-conflict.
func (s specBuilder) replaceConflict() any {
	version := obj{"header": "ETag"}
	if s.bodyVersion() {
		version = obj{"field": s.opts.VersionField}
	}
	stale := obj{"kind": "stale-update", "version": version}
	if !s.opts.PUTCreate {
		return stale
	}
	stale["subject"] = "replaceWidget"
	return []any{obj{"kind": "duplicate-create", "expect": []any{http.StatusPreconditionFailed}}, stale}
}

func (s specBuilder) components() obj {
	c := obj{
		"parameters": obj{
			"WidgetId": obj{"name": "id", "in": "path", "required": true,
				"schema": obj{"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "minLength": 1, "maxLength": 64}},
		},
		"headers": obj{
			"ETag":       obj{"description": "The widget's entity tag.", "required": true, "schema": obj{"type": "string"}},
			"Location":   obj{"description": "The widget's URL path, /widgets/{id}.", "required": true, "schema": obj{"type": "string"}},
			"RetryAfter": obj{"description": "Seconds to wait before retrying.", "required": true, "schema": obj{"type": "string"}},
		},
		"responses": s.responses(),
		"schemas":   s.schemas(),
	}
	if s.opts.Token != "" {
		c["securitySchemes"] = obj{"bearer": obj{"type": "http", "scheme": "bearer"}}
	}
	return c
}

// responses are the rejection responses in the RejectBody convention.
func (s specBuilder) responses() obj {
	rejection := func(desc string) obj {
		r := obj{"description": desc}
		switch s.opts.RejectBody {
		case RejectText:
			r["content"] = obj{"text/plain": obj{"schema": obj{"type": "string"}}}
		case RejectEmpty:
		default:
			r["content"] = obj{"application/problem+json": obj{"schema": ref("schemas", "Problem")}}
		}
		return r
	}
	tooMany := rejection("Too many requests: retry after Retry-After seconds.")
	tooMany["headers"] = obj{"Retry-After": ref("headers", "RetryAfter")}
	out := obj{
		"Rejection":       rejection("The request was refused; the status says why."),
		"TooManyRequests": tooMany,
	}
	unauthorized := rejection("A current bearer token is required.")
	unauthorized["headers"] = obj{"WWW-Authenticate": obj{"required": true, "schema": obj{"type": "string"}}}
	out["Unauthorized"] = unauthorized
	return out
}

// schemas are the widget's schemas in the API's shape, and the problem's.
func (s specBuilder) schemas() obj {
	name := obj{"type": "string", "minLength": 1, "maxLength": maxName}
	color := ref("schemas", "Color")
	colors := make([]any, len(Colors))
	for i, c := range Colors {
		colors[i] = c
	}
	out := obj{
		"Color": obj{"type": "string", "enum": colors},
		"Problem": obj{"type": "object", "required": []any{"type", "title", "status"}, "properties": obj{
			"type": obj{"type": "string"}, "title": obj{"type": "string"},
			"status": obj{"type": "integer", "minimum": 400, "maximum": 599}, "detail": obj{"type": "string"},
		}},
		"WidgetList": obj{"type": "object", "required": []any{"items"}, "properties": obj{
			"items": obj{"type": "array", "items": ref("schemas", "Widget")},
		}},
	}
	id := obj{"type": "string", "readOnly": true}
	if s.kubernetes() {
		rv := obj{"type": "string", "description": "Opaque; changes with every write."}
		out["Widget"] = obj{"type": "object", "required": []any{"id", "metadata", "spec"}, "properties": obj{
			"id":       id,
			"metadata": obj{"type": "object", "required": []any{"name", "resourceVersion"}, "properties": obj{"name": name, "resourceVersion": rv}},
			"spec":     obj{"type": "object", "required": []any{"color"}, "properties": obj{"color": color}},
		}}
		out["WidgetCreate"] = obj{"type": "object", "required": []any{"metadata", "spec"}, "properties": obj{
			"metadata": obj{"type": "object", "required": []any{"name"}, "properties": obj{"name": name}},
			"spec":     obj{"type": "object", "required": []any{"color"}, "properties": obj{"color": color}},
		}}
		meta := obj{"resourceVersion": rv}
		metaRequired := []any{}
		if s.opts.PUTCreate {
			meta["name"] = name
			metaRequired = append(metaRequired, "name")
		} else {
			metaRequired = append(metaRequired, "resourceVersion")
		}
		out["WidgetReplace"] = obj{"type": "object", "required": []any{"metadata", "spec"}, "properties": obj{
			"metadata": obj{"type": "object", "required": metaRequired, "properties": meta},
			"spec":     obj{"type": "object", "required": []any{"color"}, "properties": obj{"color": color}},
		}}
		return out
	}
	widget := obj{"id": id, "name": name, "color": color}
	required := []any{"id", "name", "color"}
	replace := obj{"color": color}
	replaceRequired := []any{"color"}
	if s.opts.PUTCreate {
		replace["name"] = name
		replaceRequired = append(replaceRequired, "name")
	}
	if f := s.field(); f != "" {
		v := s.versionSchema()
		widget[f], replace[f] = v, v
		required = append(required, f)
		if !s.opts.PUTCreate {
			replaceRequired = append(replaceRequired, f)
		}
	}
	out["Widget"] = obj{"type": "object", "required": required, "properties": widget}
	out["WidgetCreate"] = obj{"type": "object", "required": []any{"name", "color"}, "properties": obj{"name": name, "color": color}}
	out["WidgetReplace"] = obj{"type": "object", "required": replaceRequired, "properties": replace}
	return out
}

// versionSchema is the schema of a top-level body version field.
func (s specBuilder) versionSchema() obj {
	switch s.opts.VersionField {
	case VersionRev:
		return obj{"type": "string", "pattern": "^[0-9]+-[0-9a-f]+$", "description": "The revision, <n>-<hash>."}
	case VersionLockVersion:
		return obj{"type": "integer", "minimum": 0, "description": "The optimistic lock's version, from 0."}
	}
	return obj{"type": "integer", "minimum": 1, "description": "The revision, from 1."}
}
