package backend

// redact renders err for clients, spans, logs and /readyz with package
// redact, the one redaction of everything that leaves the process: URLs
// lose their user info and credential-looking parameters, and the values
// of the backend's configured headers are removed wherever they appear.
func (b *Backend) redact(err error) string {
	return b.redactor.Error(err)
}

// Redact is redact for the gateway's own messages about the backend.
func (b *Backend) Redact(err error) string { return b.redactor.Error(err) }
