// Package httphead reads and checks the HTTP/1.1 heads of WebSocket
// handshakes: the client's upgrade request as it arrives from an untrusted
// peer, the head wsguard forwards upstream, and the upstream's response.
//
// Everything here runs before a connection is admitted, on bytes an
// attacker chose, so the package is built to be strict and cheap: it never
// panics, never lets a malformed or ambiguous head through, and parses
// without allocating.
//
// # Reading
//
// ReadHead fills a caller-owned buffer, normally MaxHeadSize bytes, until
// the empty line that ends a head, and hands back the head and any bytes
// read past it. The buffer bounds the head; the caller's read deadline
// bounds the time a slow client may take to send it.
//
// # Parsing
//
// ParseRequest and ParseResponse split a head into its start line and
// fields without copying: every byte slice in the result points into the
// head. Where RFC 9112 allows a recipient to be lenient, these parsers
// refuse instead, because request smuggling and header injection live in
// the gap between a lenient parser and a strict one:
//
//   - the request line is METHOD SP target SP HTTP/x.y with single spaces,
//     a token method and a target of visible ASCII
//   - field names are tokens, with no whitespace before the colon
//   - field values hold no control byte other than tab: no CR, LF or NUL
//   - obsolete line folding (a line starting with a space or tab) is refused
//   - lines end in CRLF or a bare LF; a CR anywhere else is refused
//   - at most MaxFields fields
//
// A refusal is a *ParseError whose Reason is safe to send back as the body
// of its Status.
//
// # Validating
//
// ValidateUpgrade applies RFC 6455 section 4.2.1 to a parsed request and
// also refuses any sign of a request body, closing a smuggling path through
// the upgrade. A refusal is a *Reject that carries the status, reason and
// any header to answer with. AcceptKey computes the Sec-WebSocket-Accept
// value that proves a server read the client's key.
//
// # Forwarding
//
// AppendUpstreamRequest writes the head that goes upstream: the client's
// fields minus hop-by-hop ones, with the forwarding fields
// (X-Forwarded-For and friends) replaced by values the gateway vouches for.
//
// # Lifetimes and concurrency
//
// Results alias their input buffers: a Request is valid only while the
// head it came from is neither modified nor reused. Functions keep no
// state between calls and are safe for concurrent use on distinct buffers.
package httphead
