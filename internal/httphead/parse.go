package httphead

import "bytes"

// MaxFields is the largest number of header lines ParseRequest and
// ParseResponse accept. Browsers send about a dozen on a handshake.
const MaxFields = 100

// ParseError reports why a head was refused. Reason is a short lowercase
// phrase that never contains input bytes, so it is safe to send to the
// client as a text/plain body with Status.
//
// The parse functions return a *ParseError for every syntax problem; use
// errors.As to get at it. The values are shared between calls, so a flood
// of bad heads costs no allocations: read them, never modify them.
type ParseError struct {
	Status int    // HTTP status to answer with: 400, or 431 for too many fields
	Reason string // e.g. "invalid header name"
}

// Error returns the reason prefixed with the package name.
func (e *ParseError) Error() string {
	return "httphead: " + e.Reason
}

// The parse errors, one shared value per reason.
var (
	errEmpty        = badHead("empty head")
	errUnterminated = badHead("head not terminated by an empty line")
	errTrailing     = badHead("data after end of head")
	errRequestLine  = badHead("malformed request line")
	errMethod       = badHead("invalid method")
	errTarget       = badHead("invalid request target")
	errVersion      = badHead("invalid http version")
	errStatusLine   = badHead("malformed status line")
	errStatus       = badHead("invalid status code")
	errReason       = badHead("reason phrase contains control character")
	errFold         = badHead("obsolete line folding")
	errName         = badHead("invalid header name")
	errSpaceColon   = badHead("whitespace before colon in header")
	errNoColon      = badHead("header line without colon")
	errValue        = badHead("header value contains control character")
	errTooMany      = &ParseError{Status: 431, Reason: "too many header fields"}
)

// badHead returns a ParseError answered with 400 Bad Request.
func badHead(reason string) *ParseError {
	return &ParseError{Status: 400, Reason: reason}
}

// Request is a parsed request head. Its byte slices point into the head
// passed to ParseRequest; copy what must outlive that buffer.
type Request struct {
	Method []byte // a token, e.g. "GET"
	Target []byte // visible ASCII only, e.g. "/chat?room=1"
	Major  int    // HTTP major version, one digit
	Minor  int    // HTTP minor version, one digit
	Fields        // header lines in order, with Get, Count and HasToken
}

// Path returns the target up to, not including, the first '?'.
func (r *Request) Path() []byte {
	if i := bytes.IndexByte(r.Target, '?'); i >= 0 {
		return r.Target[:i]
	}
	return r.Target
}

// Response is a parsed response head, as read from an upstream server.
// Its byte slices point into the head passed to ParseResponse.
type Response struct {
	Major  int    // HTTP major version, one digit
	Minor  int    // HTTP minor version, one digit
	Status int    // three digits, 100 to 999
	Reason []byte // reason phrase as sent, possibly empty
	Fields        // header lines in order, with Get, Count and HasToken
}

// ParseRequest parses a request head: the request line
// "METHOD SP target SP HTTP/x.y", header lines, and the empty line that ends
// the head, as returned by ReadHead. Lines end in CRLF or a bare LF. Nothing
// may follow the empty line.
//
// The parser is strict, since lenient parsing is what request smuggling and
// header injection exploit: single spaces in the request line, token field
// names with no whitespace before the colon, no control bytes other than
// tab in values, no obsolete line folding, at most MaxFields fields.
//
// fields lends its backing array to the result: Fields is built in
// fields[:0], so passing the previous request's Fields (or a slice made with
// capacity MaxFields) makes parsing allocation-free. fields may be nil.
// Errors are of type *ParseError.
func ParseRequest(head []byte, fields []Field) (Request, error) {
	line, rest, err := startLine(head)
	if err != nil {
		return Request{}, err
	}

	var r Request
	r.Method, r.Target, r.Major, r.Minor, err = parseRequestLine(line)
	if err != nil {
		return Request{}, err
	}
	r.Fields, err = parseFields(rest, fields[:0])
	if err != nil {
		return Request{}, err
	}
	return r, nil
}

// ParseResponse parses a response head: the status line
// "HTTP/x.y SP 3-digit-status [SP reason]", header lines, and the empty
// line that ends the head. Header lines follow the same strict rules as in
// ParseRequest, and fields is reused the same way.
func ParseResponse(head []byte, fields []Field) (Response, error) {
	line, rest, err := startLine(head)
	if err != nil {
		return Response{}, err
	}

	var r Response
	r.Major, r.Minor, r.Status, r.Reason, err = parseStatusLine(line)
	if err != nil {
		return Response{}, err
	}
	r.Fields, err = parseFields(rest, fields[:0])
	if err != nil {
		return Response{}, err
	}
	return r, nil
}

// startLine splits off the first line of a head.
func startLine(head []byte) (line, rest []byte, err error) {
	line, rest, ok := nextLine(head)
	switch {
	case len(head) == 0 || (ok && len(line) == 0):
		return nil, nil, errEmpty
	case !ok:
		return nil, nil, errUnterminated
	}
	return line, rest, nil
}

// nextLine splits b after its first LF. line excludes the LF and one CR
// before it; any other CR stays in line for the caller to refuse.
func nextLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, false
	}
	line, rest = b[:i], b[i+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest, true
}

// parseRequestLine splits "METHOD SP target SP HTTP/x.y".
func parseRequestLine(line []byte) (method, target []byte, major, minor int, err error) {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return nil, nil, 0, 0, errRequestLine
	}
	method, line = line[:sp], line[sp+1:]
	if !isToken(method) {
		return nil, nil, 0, 0, errMethod
	}

	// The target cannot hold a space, so the next one ends it; a second
	// space in a row leaves an empty target, which is refused.
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return nil, nil, 0, 0, errRequestLine
	}
	target, line = line[:sp], line[sp+1:]
	for _, c := range target {
		if !isTargetChar(c) {
			return nil, nil, 0, 0, errTarget
		}
	}

	major, minor, ok := parseVersion(line)
	if !ok {
		return nil, nil, 0, 0, errVersion
	}
	return method, target, major, minor, nil
}

// parseStatusLine splits "HTTP/x.y SP 3-digit-status [SP reason]".
func parseStatusLine(line []byte) (major, minor, status int, reason []byte, err error) {
	const versionLen = len("HTTP/x.y")
	if len(line) < versionLen+4 || line[versionLen] != ' ' {
		return 0, 0, 0, nil, errStatusLine
	}
	major, minor, ok := parseVersion(line[:versionLen])
	if !ok {
		return 0, 0, 0, nil, errVersion
	}

	code := line[versionLen+1 : versionLen+4]
	for _, c := range code {
		if c < '0' || c > '9' {
			return 0, 0, 0, nil, errStatus
		}
	}
	if code[0] == '0' {
		return 0, 0, 0, nil, errStatus
	}
	status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')

	reason = line[versionLen+4:]
	if len(reason) > 0 {
		if reason[0] != ' ' {
			return 0, 0, 0, nil, errStatusLine
		}
		reason = reason[1:]
	}
	for _, c := range reason {
		if !isValueChar(c) {
			return 0, 0, 0, nil, errReason
		}
	}
	return major, minor, status, reason, nil
}

// parseVersion parses exactly "HTTP/x.y" with one digit on each side.
func parseVersion(b []byte) (major, minor int, ok bool) {
	if len(b) != len("HTTP/x.y") || string(b[:5]) != "HTTP/" || b[6] != '.' {
		return 0, 0, false
	}
	if b[5] < '0' || b[5] > '9' || b[7] < '0' || b[7] > '9' {
		return 0, 0, false
	}
	return int(b[5] - '0'), int(b[7] - '0'), true
}

// parseFields parses header lines up to and including the empty line,
// which must end b, appending them to fs.
func parseFields(b []byte, fs Fields) (Fields, error) {
	for {
		line, rest, ok := nextLine(b)
		if !ok {
			return nil, errUnterminated
		}
		if len(line) == 0 {
			if len(rest) != 0 {
				return nil, errTrailing
			}
			return fs, nil
		}
		if len(fs) == MaxFields {
			return nil, errTooMany
		}

		f, err := parseField(line)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
		b = rest
	}
}

// parseField parses one non-empty header line "name: value".
func parseField(line []byte) (Field, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return Field{}, errFold
	}

	i := 0
	for i < len(line) && isTokenChar[line[i]] {
		i++
	}
	if i == 0 || i == len(line) || line[i] != ':' {
		return Field{}, nameError(line, i)
	}

	value := line[i+1:]
	for _, c := range value {
		if !isValueChar(c) {
			return Field{}, errValue
		}
	}
	return Field{Name: line[:i], Value: trimOWS(value)}, nil
}

// nameError picks the most specific error for a header line whose name,
// the first i bytes, is not followed directly by a colon.
func nameError(line []byte, i int) *ParseError {
	if bytes.IndexByte(line, ':') < 0 {
		return errNoColon
	}

	// "Host : x" is refused on its own account: some servers drop the
	// space and some keep it in the name, a classic smuggling split.
	j := i
	for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
		j++
	}
	if i > 0 && j > i && line[j] == ':' {
		return errSpaceColon
	}
	return errName
}
