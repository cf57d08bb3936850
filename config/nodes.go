package config

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Helpers for walking yaml.Node trees and naming what they hold.

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for range 8 {
		if n.Kind != yaml.AliasNode || n.Alias == nil {
			break
		}
		n = n.Alias
	}
	return n
}

// isNull reports whether n is an empty or null scalar ("", "~", "null").
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what n holds, for "expected X, found Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	}
	return "an alias"
}

// Types named in messages.
var (
	durationType = reflect.TypeFor[Duration]()
	sizeType     = reflect.TypeFor[Size]()
	rateType     = reflect.TypeFor[Rate]()
	percentType  = reflect.TypeFor[Percent]()
)

// typeName names what a value of type t is written as.
func typeName(t reflect.Type) string {
	switch t {
	case durationType:
		return "a duration"
	case sizeType:
		return "a size"
	case rateType:
		return "a rate"
	case percentType:
		return "a percentage"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int:
		return "an integer"
	case reflect.Slice:
		return "a list"
	}
	return "a mapping"
}

// yamlName returns the key of struct field f, or "" if it has none.
func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if !f.IsExported() || name == "-" {
		return ""
	}
	return name
}

// fieldByKey returns the field of struct v whose YAML key is key.
func fieldByKey(v reflect.Value, key string) (reflect.Value, bool) {
	for i := range v.NumField() {
		if name := yamlName(v.Type().Field(i)); name != "" && name == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// plainKey matches keys that need no quoting in a key path.
var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinKey appends k to the key path, quoting k when it is not a plain
// name so that the path stays on one line and unambiguous.
func joinKey(path, k string) string {
	if !plainKey.MatchString(k) {
		k = strconv.Quote(k)
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

// suggest returns ` (did you mean "x"?)` when a key of struct type t is
// within two edits of key, or "".
func suggest(t reflect.Type, key string) string {
	best, bestDist := "", 3
	for i := range t.NumField() {
		name := yamlName(t.Field(i))
		if d := editDistance(key, name); name != "" && d < bestDist {
			best, bestDist = name, d
		}
	}
	if best == "" || len(key) <= bestDist {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b in bytes.
// Keys longer than 64 bytes are never close to a setting name.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return len(a) + len(b)
	}
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// yamlLine matches the errors yaml.v3 reports with a position.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError records a YAML syntax error at the line yaml.v3 names, or
// at a line found by guessLine when it names none.
func (d *decoder) syntaxError(data []byte, err error) {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
		line = guessLine(data, msg)
	}
	d.fail(max(line, 1), "", "invalid YAML: %s", msg)
}

// unknownAnchor matches yaml.v3's error for an alias without an anchor.
var unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// guessLine finds the line of an error that yaml.v3 reports without one:
// the first use of an unknown anchor, else the first byte that is not
// valid UTF-8 or is a control character YAML forbids, else line 1.
func guessLine(data []byte, msg string) int {
	if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			return lineOf(data, i)
		}
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 || r < ' ' && r != '\t' && r != '\n' && r != '\r' {
			return lineOf(data, i)
		}
		i += size
	}
	return 1
}

// lineOf returns the 1-based line holding byte offset i of data.
func lineOf(data []byte, i int) int {
	return bytes.Count(data[:i], []byte("\n")) + 1
}
