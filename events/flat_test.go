package events

import (
	"encoding/json"
	"reflect"
	"testing"
)

// flatCases are payloads the flat decoder must decode exactly as
// json.Unmarshal does, or hand over to it.
var flatCases = []string{
	`{"execution_id":"x1","kernel_id":"k1","msg_id":"m1"}`,
	`{ "execution_id" : "x1" , "kernel_id":"k1" }`,
	`{"execution_id":"caf\u00e9","kernel_id":"k\"1"}`,
	`{"execution_id":"café ☕","kernel_id":"k1"}`,
	`{"Execution_ID":"x1"}`,
	`{"execution_id":null,"kernel_id":"k1"}`,
	`{"execution_id":"x1","extra":{"a":[1,2]}}`,
	`{"execution_id":"x1","execution_id":"x2"}`,
	`{"execution_id":"x1","status":"error","execution_count":7,"ename":"E","traceback":["a","b"]}`,
	`{"execution_id":"x1","status":"ok","execution_count":07}`,
	`{"execution_id":"x1","status":"ok","execution_count":1.0}`,
	`{"execution_id":"x1","status":"ok","execution_count":-3,"traceback":[]}`,
	`{"execution_id":"x1","status":"ok","execution_count":99999999999999999999}`,
	`{"execution_id":"x1","status":"ok","traceback":null}`,
	`{"execution_id":"x1","code":"print(1)\n","allow_stdin":true,"notebook":"a.ipynb"}`,
	`{"execution_id":"x1","allow_stdin":"yes"}`,
	`{"execution_id":"x1"} trailing`,
	`{"execution_id":"x1",}`,
	`{"execution_id":"\xff"}`,
	`{}`,
	` {} `,
	`[]`,
	`{"execution_id":`,
	``,
}

// checkFlat compares the registry's decoder (flat first) with json.Unmarshal
// for every registered type whose payload is flat.
func checkFlat(t *testing.T, raw []byte) {
	t.Helper()
	for typ, info := range catalog {
		got, gotErr := info.decode(raw)
		want := reflect.New(reflect.TypeOf(samplePayload(typ)))
		wantErr := json.Unmarshal(raw, want.Interface())
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%s %q: error %v, json.Unmarshal's %v", typ, raw, gotErr, wantErr)
		}
		if gotErr == nil && !reflect.DeepEqual(got, want.Elem().Interface()) {
			t.Fatalf("%s %q:\n got %#v\nwant %#v", typ, raw, got, want.Elem().Interface())
		}
	}
}

// samplePayload returns the zero payload of a registered type.
func samplePayload(typ string) Payload {
	p, err := catalog[typ].decode([]byte(`{}`))
	if err != nil {
		panic(err)
	}
	return p
}

func TestFlatDecoderMatchesJSON(t *testing.T) {
	for _, c := range flatCases {
		checkFlat(t, []byte(c))
	}
	if newFlatDecoder(reflect.TypeFor[ExecutionStarted]()) == nil || newFlatDecoder(reflect.TypeFor[ExecutionFinished]()) == nil {
		t.Fatal("the replay's hottest payloads are not flat: the fast path is off")
	}
}

func FuzzFlatDecoder(f *testing.F) {
	for _, c := range append(flatCases, escapeCases...) {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkFlat(t, raw) })
}

var escapeCases = []string{
	`{"execution_id":"x1","kernel_id":"k1","code":"if a \u003c b:\n\tprint(\"x\\\\y\/z\")\r\b\f"}`,
	`{"execution_id":"\u00e9\u4e2d","code":"\ud83d\ude00"}`,
	`{"execution_id":"\ud800","code":"x"}`,
	`{"execution_id":"\u12","code":"x"}`,
	`{"execution_id":"\x","code":"x"}`,
	`{"execution_id":"a\"}`,
	`{"execution_id":"a\\"}`,
}

func TestFlatDecoderEscapes(t *testing.T) {
	for _, c := range escapeCases {
		checkFlat(t, []byte(c))
	}
}
