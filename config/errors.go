package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem with a configuration, located by file, line and key.
type Error struct {
	File    string // file name as given to Parse or Load; empty for code
	Line    int    // 1-based line in File; 0 when unknown
	Key     string // full key path such as "routes[0].timeouts.idle"
	Problem string // what is wrong, lowercase
}

// Error formats e as "file:line: key: problem". Parts that are unknown
// are left out, so a config built in code reads "key: problem".
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

// ErrorList holds every problem found by Parse, Load or Validate, sorted
// by line. It is never returned empty.
type ErrorList struct {
	Errors []*Error
}

// Error joins the formatted errors with newlines.
func (l *ErrorList) Error() string {
	lines := make([]string, len(l.Errors))
	for i, e := range l.Errors {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors, so errors.As can find an *Error.
func (l *ErrorList) Unwrap() []error {
	errs := make([]error, len(l.Errors))
	for i, e := range l.Errors {
		errs[i] = e
	}
	return errs
}

// add records a problem; format and args build the Problem text.
func (l *ErrorList) add(file string, line int, key, format string, args ...any) {
	l.Errors = append(l.Errors, &Error{
		File:    file,
		Line:    line,
		Key:     key,
		Problem: fmt.Sprintf(format, args...),
	})
}

// err returns l as an error, or nil when it holds no problems. Errors are
// sorted by line, those without a line last, keeping the order they were
// found in otherwise.
func (l *ErrorList) err() error {
	if len(l.Errors) == 0 {
		return nil
	}
	slices.SortStableFunc(l.Errors, func(a, b *Error) int {
		return cmp.Compare(sortLine(a.Line), sortLine(b.Line))
	})
	return l
}

// sortLine orders errors without a line (0) after all others.
func sortLine(n int) uint {
	return uint(n) - 1
}

// source remembers where a Config was read from, so Validate can point at
// the line of each key.
type source struct {
	file  string
	lines map[string]int // key path -> line of the key (or list item)
}

// line returns the line of key, or of its nearest ancestor found in the
// file, or 0.
func (s *source) line(key string) int {
	if s == nil {
		return 0
	}
	for key != "" {
		if n, ok := s.lines[key]; ok {
			return n
		}
		key = parentKey(key)
	}
	return 0
}

// parentKey strips the last element from a key path:
// "routes[1].timeouts" -> "routes[1]" -> "routes" -> "".
func parentKey(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}
