package http

// registerVoice registers the voice-data routes.
func (s *Server) registerVoice() {}
