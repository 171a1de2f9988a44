package tlsconf_test

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/tlsconf"
	"github.com/tracegate/tracegate/internal/tlsconf/tlstest"
)

// serveTLS runs an HTTPS server with tc that answers with the common name
// of the client's verified certificate, or "anonymous".
func serveTLS(t *testing.T, tc *tls.Config) string {
	t.Helper()
	// Not httptest's StartTLS, which adds a certificate of its own.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.TLS.VerifiedChains) > 0 {
				io.WriteString(w, r.TLS.VerifiedChains[0][0].Subject.CommonName)
				return
			}
			io.WriteString(w, "anonymous")
		}),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go srv.Serve(tls.NewListener(ln, tc))
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

func client(roots *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: roots, DisableKeepAlives: true}, Timeout: 5 * time.Second}
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestServerClientCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "server CA")
	clientCA := tlstest.NewCA(t, "client CA")
	otherCA := tlstest.NewCA(t, "someone else")
	certFile, keyFile := ca.Server(t, "127.0.0.1").Files(t, dir)
	caFile := tlstest.Write(t, dir, "clients.pem", clientCA.CertPEM)

	withCert := func(l *tlstest.Leaf) *tls.Config {
		pair, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		// GetClientCertificate sends it even when the server asks for
		// another CA's (Certificates would then send none).
		return &tls.Config{RootCAs: ca.Pool(), GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }}
	}
	for _, tt := range []struct {
		name    string
		require bool
		client  *tls.Config
		want    string // body, or "error"
	}{
		{"optional, none given", false, &tls.Config{RootCAs: ca.Pool()}, "anonymous"},
		{"optional, valid", false, withCert(clientCA.Client(t, "agent-7")), "agent-7"},
		{"optional, other CA", false, withCert(otherCA.Client(t, "mallory")), "error"},
		{"required, none given", true, &tls.Config{RootCAs: ca.Pool()}, "error"},
		{"required, valid", true, withCert(clientCA.Client(t, "agent-8")), "agent-8"},
		{"server unknown to client", false, &tls.Config{RootCAs: otherCA.Pool()}, "error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := tlsconf.Server(&config.ServerTLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, RequireClientCert: tt.require, MinVersion: "1.2"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := get(client(tt.client), serveTLS(t, tc))
			if err != nil {
				got = "error"
			}
			if got != tt.want {
				t.Errorf("got %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}

func TestServerMinVersion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	certFile, keyFile := ca.Server(t, "127.0.0.1").Files(t, dir)
	tc, err := tlsconf.Server(&config.ServerTLS{CertFile: certFile, KeyFile: keyFile, MinVersion: "1.3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := serveTLS(t, tc)
	if _, err := get(client(&tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12}), url); err == nil {
		t.Error("a TLS 1.2 client got through min_version 1.3")
	}
	if _, err := get(client(&tls.Config{RootCAs: ca.Pool()}), url); err != nil {
		t.Errorf("TLS 1.3 client: %v", err)
	}
}

func TestServerBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	leaf := ca.Server(t, "127.0.0.1")
	other := ca.Server(t, "127.0.0.1")
	cert := tlstest.Write(t, dir, "c.pem", leaf.CertPEM)
	wrongKey := tlstest.Write(t, dir, "k.pem", other.KeyPEM)
	for _, tt := range []struct {
		cfg  config.ServerTLS
		want string
	}{
		{config.ServerTLS{CertFile: dir + "/missing.pem", KeyFile: wrongKey}, "cert_file: "},
		{config.ServerTLS{CertFile: cert, KeyFile: wrongKey}, "certificate and key: "},
		{config.ServerTLS{CertFile: wrongKey, KeyFile: wrongKey}, "cert_file holds a private key"},
		{config.ServerTLS{CertFile: cert, KeyFile: tlstest.Write(t, dir, "k2.pem", leaf.KeyPEM), ClientCAFile: wrongKey}, "client_ca_file: "},
	} {
		_, err := tlsconf.Server(&tt.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: got %v, want %q", tt.cfg, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY-----") {
			t.Errorf("the error quotes key material: %v", err)
		}
	}
}

// TestCertificateReloadUnderLoad renews the server's certificate, key file
// second, while clients make new connections all along: no call fails, and
// the new certificate is served within a few seconds.
func TestCertificateReloadUnderLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	first, second := ca.Server(t, "127.0.0.1"), ca.Server(t, "127.0.0.1")
	certFile, keyFile := first.Files(t, dir)
	tc, err := tlsconf.Server(&config.ServerTLS{CertFile: certFile, KeyFile: keyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := serveTLS(t, tc)

	var calls, failures atomic.Int64
	var sawNew atomic.Bool
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{
				RootCAs: ca.Pool(),
				VerifyConnection: func(cs tls.ConnectionState) error {
					if cs.PeerCertificates[0].SerialNumber.Cmp(second.Cert.SerialNumber) == 0 {
						sawNew.Store(true)
					}
					return nil
				},
			}}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				calls.Add(1)
				if _, err := get(c, url); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	// Not atomic as a pair: for a moment the new certificate sits beside
	// the old key, which must not fail a handshake.
	tlstest.Write(t, dir, "cert.pem.tmp", second.CertPEM)
	if err := renameOver(dir, "cert.pem"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	if err := writeKey(dir, second.KeyPEM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !sawNew.Load() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d calls failed during the renewal; first: %v", n, calls.Load(), firstErr.Load())
	}
	if !sawNew.Load() {
		t.Error("the renewed certificate was never served")
	}
	t.Logf("%d calls, %d failed", calls.Load(), failures.Load())
}

func TestBackendClient(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	backendCA := tlstest.NewCA(t, "backend CA")
	gwCA := tlstest.NewCA(t, "gateway client CA")
	srvLeaf := backendCA.Server(t, "backend.internal")
	pair, _ := tls.X509KeyPair(srvLeaf.CertPEM, srvLeaf.KeyPEM)
	url := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: gwCA.Pool(), ClientAuth: tls.RequireAndVerifyClientCert})
	caFile := tlstest.Write(t, dir, "backend-ca.pem", backendCA.CertPEM)
	gw := gwCA.Client(t, "tracegate")
	certFile := tlstest.Write(t, dir, "gw.pem", gw.CertPEM)
	keyFile := tlstest.Write(t, dir, "gw-key.pem", gw.KeyPEM)

	for _, tt := range []struct {
		name string
		cfg  config.BackendTLS
		want string
	}{
		{"private CA, server name, client cert", config.BackendTLS{CAFile: caFile, ServerName: "backend.internal", CertFile: certFile, KeyFile: keyFile}, "tracegate"},
		{"no client cert", config.BackendTLS{CAFile: caFile, ServerName: "backend.internal"}, "error"},
		{"system roots", config.BackendTLS{ServerName: "backend.internal", CertFile: certFile, KeyFile: keyFile}, "error"},
		{"wrong server name", config.BackendTLS{CAFile: caFile, ServerName: "other.internal", CertFile: certFile, KeyFile: keyFile}, "error"},
		{"insecure", config.BackendTLS{InsecureSkipVerify: true, CertFile: certFile, KeyFile: keyFile}, "tracegate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := tlsconf.Client(&tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := get(client(tc), url)
			if err != nil {
				got = "error"
			}
			if got != tt.want {
				t.Errorf("got %q (%v), want %q", got, err, tt.want)
			}
		})
	}
	if tc, err := tlsconf.Client(nil, nil); tc != nil || err != nil {
		t.Errorf("Client(nil): got %v, %v; want nil, nil", tc, err)
	}
}
