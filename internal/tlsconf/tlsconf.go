// Package tlsconf builds the TLS configurations of tracegate's listeners
// and of its connections to backends from the tls sections of the
// configuration. Certificates and keys are read again when their files
// change, so that a renewed certificate is served without a restart.
package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/tracegate/tracegate/internal/config"
)

// checkEvery bounds how often a certificate's files are looked at: at most
// once per interval, on a handshake.
const checkEvery = time.Second

// Server returns the TLS configuration of a listener. The certificate and
// key are checked for changes at most once a second, on a handshake, and
// reloaded when either changed; a pair that fails to load (a half-written
// renewal) is logged and the previous one kept. With client_ca_file, client
// certificates are verified against it when given, and required with
// require_client_cert. log may be nil.
func Server(cfg *config.ServerTLS, log *slog.Logger) (*tls.Config, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kp, err := newKeyPair(cfg.CertFile, cfg.KeyFile, log)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{
		MinVersion:     minVersion(cfg.MinVersion),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get(), nil },
	}
	if cfg.ClientCAFile != "" {
		pool, err := loadPool(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client_ca_file: %w", err)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if cfg.RequireClientCert {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return tc, nil
}

// Client returns the TLS configuration for an https backend, or nil when cfg
// is nil (the system's roots, the URL's host name). A client certificate is
// reloaded as the server's is.
func Client(cfg *config.BackendTLS, log *slog.Logger) (*tls.Config, error) {
	if cfg == nil {
		return nil, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         cfg.ServerName,
		InsecureSkipVerify: cfg.InsecureSkipVerify, // the operator's choice, warned about at start
	}
	if cfg.CAFile != "" {
		pool, err := loadPool(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" {
		kp, err := newKeyPair(cfg.CertFile, cfg.KeyFile, log)
		if err != nil {
			return nil, err
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get(), nil }
	}
	return tc, nil
}

func minVersion(v string) uint16 {
	if v == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

func loadPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}

// keyPair is a certificate and key read from files, read again when the
// files change.
type keyPair struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   stamp // of the files that gave cert
	failed  stamp // of files that failed to load, not to log twice
	checked time.Time
}

// stamp identifies a version of the two files.
type stamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func newKeyPair(certFile, keyFile string, log *slog.Logger) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile, log: log}
	st, err := kp.stat()
	if err != nil {
		return nil, err
	}
	cert, err := kp.load()
	if err != nil {
		return nil, err
	}
	kp.cert, kp.stamp, kp.checked = cert, st, time.Now()
	return kp, nil
}

func (kp *keyPair) stat() (stamp, error) {
	c, err := os.Stat(kp.certFile)
	if err != nil {
		return stamp{}, fmt.Errorf("cert_file: %w", err)
	}
	k, err := os.Stat(kp.keyFile)
	if err != nil {
		return stamp{}, fmt.Errorf("key_file: %w", err)
	}
	return stamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}

func (kp *keyPair) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(kp.certFile)
	if err != nil {
		return nil, fmt.Errorf("cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(kp.keyFile)
	if err != nil {
		return nil, fmt.Errorf("key_file: %w", err)
	}
	if bytes.Contains(certPEM, []byte("PRIVATE KEY")) {
		return nil, errors.New("cert_file holds a private key; give the certificate")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The error names what is wrong, never the key material.
		return nil, fmt.Errorf("certificate and key: %w", err)
	}
	return &cert, nil
}

// get returns the current certificate, reloading it first if its files
// changed since they were last looked at (at most once per checkEvery).
func (kp *keyPair) get() *tls.Certificate {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	now := time.Now()
	if now.Sub(kp.checked) < checkEvery {
		return kp.cert
	}
	kp.checked = now
	st, err := kp.stat()
	if err != nil || st == kp.stamp || st == kp.failed {
		return kp.cert
	}
	cert, err := kp.load()
	if err != nil {
		kp.failed = st
		kp.log.Warn("TLS certificate changed but does not load; serving the previous one", "cert_file", kp.certFile, "error", err)
		return kp.cert
	}
	kp.cert, kp.stamp = cert, st
	kp.log.Info("TLS certificate reloaded", "cert_file", kp.certFile, "not_after", cert.Leaf.NotAfter)
	return kp.cert
}
