package lab

import (
	"bytes"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// rewriteConfig copies the wsguard config at src to dst with the upstream
// of every route set to upstream, so that the protected arm reaches the
// backend the lab started on a port of its choosing. Everything else,
// comments included, stays as written.
func rewriteConfig(src, dst, upstream string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("reading wsguard config: %w", err)
	}
	out, err := pointRoutes(b, upstream)
	if err != nil {
		return fmt.Errorf("wsguard config %s: %w", src, err)
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		return fmt.Errorf("writing wsguard config: %w", err)
	}
	return nil
}

// pointRoutes sets the upstream of every route of the YAML document b.
func pointRoutes(b []byte, upstream string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not a YAML mapping")
	}
	routes := lookup(doc.Content[0], "routes")
	if routes == nil || routes.Kind != yaml.SequenceNode || len(routes.Content) == 0 {
		return nil, fmt.Errorf("no routes: the lab points each route's upstream at its backend")
	}
	for i, r := range routes.Content {
		u := lookup(r, "upstream")
		if u == nil || u.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: routes[%d] has no upstream", r.Line, i)
		}
		u.Value, u.Tag, u.Style = upstream, "!!str", 0
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// lookup returns the value of key in mapping m, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
