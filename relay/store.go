package relay

// StoreReady returns "" when the store can admit handshakes, or why it
// cannot (Redis unreachable with store.on_failure: closed), for /readyz.
func (s *Server) StoreReady() string {
	if s.shared == nil {
		return ""
	}
	return s.shared.Ready()
}
