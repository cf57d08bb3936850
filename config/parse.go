package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Load reads the YAML file at path and decodes it as Parse does. A file
// that cannot be read gives a plain error; problems inside the file give
// an *ErrorList.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes YAML data on top of Default, so absent keys keep their
// defaults. Each route's timeouts and messages start as copies of the
// top-level sections, whatever the order of keys in the file. Unknown
// keys, duplicate keys, values of the wrong kind and values that do not
// parse are all reported, each as an *Error naming filename, line and key,
// gathered in an *ErrorList. An empty file is valid. Parse does not call
// Validate. When err is not nil the returned Config is incomplete.
func Parse(filename string, data []byte) (Config, error) {
	c := Default()
	d := &decoder{file: filename, lines: make(map[string]int)}
	if root := d.document(data); root != nil {
		d.config(root, &c)
	}
	c.src = &source{file: filename, lines: d.lines}
	return c, d.errs.err()
}

// decoder walks a YAML node tree onto a Config by reflection, collecting
// errors instead of stopping at the first.
type decoder struct {
	file  string
	lines map[string]int // key path -> line, handed on to Config.src
	errs  ErrorList
}

// fail records a problem at line for key.
func (d *decoder) fail(line int, key, format string, args ...any) {
	d.errs.add(d.file, line, key, format, args...)
}

// document parses data and returns the root node of its only document, or
// nil when data holds no settings or does not parse.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			d.syntaxError(data, err)
		}
		return nil
	}

	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		d.fail(max(next.Line, 1), "", "more than one YAML document (put all settings in one)")
		return nil
	case !errors.Is(err, io.EOF):
		d.syntaxError(data, err)
		return nil
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil
	}
	return doc.Content[0]
}

// config decodes the root mapping onto c. Routes are decoded last so that
// each starts from the decoded top-level timeouts and messages.
func (d *decoder) config(root *yaml.Node, c *Config) {
	var routes *entry
	for _, e := range d.fields(root, root.Line, "", reflect.ValueOf(c).Elem()) {
		if e.key == "routes" {
			routes = &e
			continue
		}
		d.value(e.node, e.key, e.field)
	}
	if routes == nil {
		return
	}
	for _, it := range d.items(routes.node, "routes") {
		r := c.NewRoute("", "")
		d.value(it.node, it.key, reflect.ValueOf(&r).Elem())
		c.Routes = append(c.Routes, r)
	}
}

// entry is a YAML value paired with the place it decodes into.
type entry struct {
	key   string        // full key path
	node  *yaml.Node    // the value, possibly an alias
	field reflect.Value // settable; invalid for list items
}

// value decodes n into v, dispatching on v's kind. An empty (null) section
// or list keeps what v already holds.
func (d *decoder) value(n *yaml.Node, key string, v reflect.Value) {
	line := n.Line
	n = resolve(n)
	switch v.Kind() {
	case reflect.Struct:
		if !isNull(n) {
			for _, e := range d.fields(n, line, key, v) {
				d.value(e.node, e.key, e.field)
			}
		}
	case reflect.Slice:
		if !isNull(n) {
			v.Set(reflect.Zero(v.Type()))
			for _, it := range d.items(n, key) {
				elem := reflect.New(v.Type().Elem()).Elem()
				d.value(it.node, it.key, elem)
				v.Set(reflect.Append(v, elem))
			}
		}
	default:
		d.scalar(n, line, key, v)
	}
}

// fields checks that n is a mapping onto struct v, records the line of
// each key, and returns the keys' values paired with v's fields.
func (d *decoder) fields(n *yaml.Node, line int, key string, v reflect.Value) []entry {
	if n.Kind != yaml.MappingNode {
		d.fail(line, key, "expected a mapping, found %s", describe(n))
		return nil
	}
	seen := make(map[string]int)
	var out []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		kline, k := n.Content[i].Line, resolve(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			d.fail(kline, key, "expected a key name, found %s", describe(k))
			continue
		}
		sub := joinKey(key, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.fail(kline, sub, "duplicate key (first set on line %d)", first)
			continue
		}
		seen[k.Value] = kline

		f, ok := fieldByKey(v, k.Value)
		switch {
		case k.ShortTag() == "!!merge":
			d.fail(kline, sub, "merge keys are not supported (use an alias such as *name)")
		case !ok:
			d.fail(kline, sub, "unknown key%s", suggest(v.Type(), k.Value))
		default:
			d.lines[sub] = kline
			out = append(out, entry{key: sub, node: n.Content[i+1], field: f})
		}
	}
	return out
}

// items checks that n is a list and returns its items, keyed "key[i]".
func (d *decoder) items(n *yaml.Node, key string) []entry {
	line := n.Line
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(line, key, "expected a list, found %s", describe(n))
		return nil
	}
	out := make([]entry, len(n.Content))
	for i, item := range n.Content {
		sub := key + "[" + strconv.Itoa(i) + "]"
		d.lines[sub] = item.Line
		out[i] = entry{key: sub, node: item}
	}
	return out
}

// scalar decodes a scalar node into a string, an int, or a type that
// implements encoding.TextUnmarshaler.
func (d *decoder) scalar(n *yaml.Node, line int, key string, v reflect.Value) {
	want := typeName(v.Type())
	switch {
	case n.Kind != yaml.ScalarNode:
		d.fail(line, key, "expected %s, found %s", want, describe(n))
		return
	case isNull(n) && v.Kind() == reflect.String:
		d.fail(line, key, `missing value (write "" for an empty string)`)
		return
	case isNull(n):
		d.fail(line, key, "missing value (expected %s)", want)
		return
	}

	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if err := u.UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(line, key, "%s", err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		switch n.Value {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.fail(line, key, "invalid boolean %q (use true or false)", n.Value)
		}
	case reflect.Int:
		i, err := strconv.ParseInt(n.Value, 10, strconv.IntSize)
		switch {
		case errors.Is(err, strconv.ErrRange):
			d.fail(line, key, "integer %q is out of range", n.Value)
		case err != nil:
			d.fail(line, key, "invalid integer %q (use a whole number such as 100)", n.Value)
		default:
			v.SetInt(i)
		}
	default:
		d.fail(line, key, "settings of type %s cannot be read from YAML", v.Type())
	}
}
