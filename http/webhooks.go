package http

// WebhookConfig holds the webhook verification secrets.
type WebhookConfig struct{}

// registerWebhooks registers the provider webhook routes.
func (s *Server) registerWebhooks() {}
