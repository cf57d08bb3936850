package testsupport

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

// TestCert is a server certificate for localhost and 127.0.0.1, issued
// at test time by a CA of its own, in the files servers read and the
// form clients trust.
type TestCert struct {
	CertFile     string // PEM certificate (nginx ssl_certificate)
	KeyFile      string // PEM private key (nginx ssl_certificate_key)
	CombinedFile string // certificate then key in one file (HAProxy crt)
	CAFile       string // PEM certificate of the issuing CA, for clients that read a file
	Pool         *x509.CertPool
}

// ClientConfig returns a TLS client configuration that trusts only the
// certificate's CA.
func (c *TestCert) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: c.Pool, MinVersion: tls.VersionTLS12}
}

// NewTestCert issues a server certificate from a new CA (see NewCA) and
// writes its files into a temporary directory of the test.
func NewTestCert(t testing.TB) *TestCert {
	t.Helper()
	ca := NewCA(t, "wsguard test CA")
	certPEM, keyPEM := ca.Issue(t, "localhost", false)
	dir := t.TempDir()
	c := &TestCert{
		CertFile:     filepath.Join(dir, "cert.pem"),
		KeyFile:      filepath.Join(dir, "key.pem"),
		CombinedFile: filepath.Join(dir, "combined.pem"),
		CAFile:       filepath.Join(dir, "ca.pem"),
		Pool:         ca.Pool(),
	}
	for file, data := range map[string][]byte{
		c.CertFile:     certPEM,
		c.KeyFile:      keyPEM,
		c.CombinedFile: append(append([]byte{}, certPEM...), keyPEM...),
		c.CAFile:       ca.PEM,
	} {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}
