package auth

import (
	"crypto/x509"
	"net/http"
)

// ClientCertificates gives an identity to callers that presented a client
// certificate verified by the listener (tls.client_ca_file) and have no
// other identity: where no token is required, such callers are
// authenticated, and the rest are anonymous. Put it inside
// [Authenticator.Middleware], whose token identity wins. Requests over plain
// HTTP, or without a certificate, pass as they are.
func ClientCertificates(next http.Handler) http.Handler {
	withInfo := withTokenInfo(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := FromContext(r.Context()); ok || r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		id := certificateIdentity(r.TLS.VerifiedChains[0][0])
		withInfo.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

func certificateIdentity(c *x509.Certificate) Identity {
	id := Identity{Method: MethodCertificate, Subject: c.Subject.CommonName}
	if len(c.URIs) > 0 {
		id.Subject = c.URIs[0].String()
	}
	return id
}
