// Command jsontoyaml prints what kustomize's ResMap.AsYaml prints for JSON objects, the text Flux's
// kustomize-controller hashes into status.history[].digest. Stdin holds JSON arrays, one per stream;
// each array's objects go through json.Marshal (numbers typed as a YAML decode types them) and
// sigs.k8s.io/yaml.JSONToYAML, joined by "---\n". Each stream is followed by a NUL byte.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"sigs.k8s.io/yaml"
)

func main() {
	in := json.NewDecoder(bufio.NewReader(os.Stdin))
	in.UseNumber()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for {
		var objects []interface{}
		if err := in.Decode(&objects); err == io.EOF {
			return
		} else if err != nil {
			fail(err)
		}
		for i, object := range objects {
			text, err := json.Marshal(typed(object))
			if err != nil {
				fail(err)
			}
			doc, err := yaml.JSONToYAML(text)
			if err != nil {
				fail(err)
			}
			if i > 0 {
				out.WriteString("---\n")
			}
			out.Write(doc)
		}
		out.WriteByte(0)
	}
}

// typed gives numbers the Go types a YAML decode gives them: int64, else uint64, else float64.
func typed(value interface{}) interface{} {
	switch v := value.(type) {
	case map[string]interface{}:
		for key, item := range v {
			v[key] = typed(item)
		}
	case []interface{}:
		for i, item := range v {
			v[i] = typed(item)
		}
	case json.Number:
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return n
		}
		if n, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return n
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			fail(err)
		}
		return f
	}
	return value
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "jsontoyaml:", err)
	os.Exit(1)
}
