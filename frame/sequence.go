package frame

// Sequencer applies RFC 6455's message-level rules to the headers of one
// direction of a connection: fragmentation order, masking, reserved bits,
// and the running size of the message in progress. The zero value expects
// server-to-client frames with no extension; set the fields before use.
// A Sequencer is not safe for concurrent use.
type Sequencer struct {
	// FromClient says frames must be masked (true) or unmasked (false).
	FromClient bool
	// Deflate allows RSV1 on the first frame of a data message
	// (permessage-deflate, RFC 7692).
	Deflate bool
	// AnyRSV allows every reserved bit, for an extension the guard does
	// not know; it then cannot check them.
	AnyRSV bool

	inMessage bool
	size      int64 // payload bytes of the message in progress
	frames    int   // data frames of the message in progress
}

// Check validates h against the frames before it and records it. It
// returns whether h starts a new data message. Control frames may arrive
// between fragments and do not disturb the message in progress.
func (s *Sequencer) Check(h Header) (starts bool, err error) {
	if h.Masked != s.FromClient {
		if s.FromClient {
			return false, ErrUnmasked
		}
		return false, ErrMasked
	}
	if err := s.checkRSV(h); err != nil {
		return false, err
	}
	if h.Op.IsControl() {
		return false, nil
	}
	switch {
	case h.Op == OpContinuation && !s.inMessage:
		return false, ErrUnexpectedCont
	case h.Op != OpContinuation && s.inMessage:
		return false, ErrExpectedCont
	}
	starts = h.Op != OpContinuation
	if starts {
		s.size, s.frames = 0, 0
	}
	s.size += h.Length
	s.frames++
	s.inMessage = !h.Fin
	return starts, nil
}

func (s *Sequencer) checkRSV(h Header) error {
	if h.Rsv == 0 || s.AnyRSV {
		return nil
	}
	firstData := h.Op == OpText || h.Op == OpBinary
	if s.Deflate && h.Rsv == Rsv1 && firstData {
		return nil
	}
	return ErrReservedBits
}

// MessageSize returns the payload bytes of the data message in progress
// (or of the last one, once it ended), counted across its fragments.
func (s *Sequencer) MessageSize() int64 { return s.size }

// Fragments returns how many data frames the message in progress (or the
// last one) has had.
func (s *Sequencer) Fragments() int { return s.frames }

// InMessage reports whether a fragmented data message is in progress.
func (s *Sequencer) InMessage() bool { return s.inMessage }
