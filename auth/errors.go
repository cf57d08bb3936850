package auth

import "net/http"

// Error is why a request was refused: an RFC 6750 error code for the
// client, and a short fixed label for logs and metrics.
//
// Extract and Verify return shared values, one per reason, so refusing a
// flood of bad tokens allocates no errors: read them, never modify them.
// Use errors.As to get at one through wrapping.
type Error struct {
	// Code is the RFC 6750 section 3.1 error code: "invalid_request" for a
	// request that carries a token in a malformed or ambiguous way,
	// "invalid_token" for a token that fails verification. It is empty for
	// ErrMissing, since a request that sent no credentials gets no error
	// code.
	Code string

	// Reason is one of "missing", "malformed", "too_large", "alg_none",
	// "alg_not_allowed", "bad_signature", "expired", "not_yet_valid",
	// "wrong_issuer", "wrong_audience", "missing_claim" and "unknown_key".
	// It never holds request bytes, so it is safe as a metric label and as
	// the error_description sent to the client.
	Reason string
}

// The RFC 6750 error codes.
const (
	codeInvalidRequest = "invalid_request"
	codeInvalidToken   = "invalid_token"
)

// ErrMissing is the refusal for a request that carries no token when
// Options.Required is set. Extract does not return it, since a missing
// token is not an error when anonymous access is allowed; the caller
// decides with Authenticator.Required.
var ErrMissing = &Error{Reason: "missing"}

// The refusals Extract and Verify return, one shared value per reason.
var (
	errRequestMalformed = &Error{Code: codeInvalidRequest, Reason: "malformed"}
	errTooLarge         = &Error{Code: codeInvalidRequest, Reason: "too_large"}

	errMalformed     = &Error{Code: codeInvalidToken, Reason: "malformed"}
	errAlgNone       = &Error{Code: codeInvalidToken, Reason: "alg_none"}
	errAlgNotAllowed = &Error{Code: codeInvalidToken, Reason: "alg_not_allowed"}
	errBadSignature  = &Error{Code: codeInvalidToken, Reason: "bad_signature"}
	errExpired       = &Error{Code: codeInvalidToken, Reason: "expired"}
	errNotYetValid   = &Error{Code: codeInvalidToken, Reason: "not_yet_valid"}
	errWrongIssuer   = &Error{Code: codeInvalidToken, Reason: "wrong_issuer"}
	errWrongAudience = &Error{Code: codeInvalidToken, Reason: "wrong_audience"}
	errMissingClaim  = &Error{Code: codeInvalidToken, Reason: "missing_claim"}
	errUnknownKey    = &Error{Code: codeInvalidToken, Reason: "unknown_key"}
)

// Error returns the code and reason prefixed with the package name, as in
// "auth: invalid_token: expired", or "auth: missing token" for ErrMissing.
func (e *Error) Error() string {
	if e.Code == "" {
		return "auth: " + e.Reason + " token"
	}
	return "auth: " + e.Code + ": " + e.Reason
}

// Status returns the HTTP status to refuse the handshake with: always
// 401 Unauthorized.
func (e *Error) Status() int {
	return http.StatusUnauthorized
}

// WWWAuthenticate returns the value of the WWW-Authenticate field to send
// with the refusal (RFC 6750 section 3), such as
//
//	Bearer error="invalid_token", error_description="expired"
//
// For an error without a code, such as ErrMissing, it is just "Bearer":
// a client that sent no credentials is told which scheme to use and
// nothing more.
func (e *Error) WWWAuthenticate() string {
	if e.Code == "" {
		return "Bearer"
	}
	return `Bearer error="` + e.Code + `", error_description="` + e.Reason + `"`
}
