package safeurl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// secrets are the parts of the test URLs that must never show.
var secrets = []string{"s3cr3t-pw", "86da1f0c9e", "q-tok-77", "T0KEN-PATH"}

func noSecret(t *testing.T, what, msg string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(strings.ToLower(msg), strings.ToLower(s)) {
			t.Errorf("%s %q contains the secret %q", what, msg, s)
		}
	}
}

// realError makes the error Go's HTTP client returns for a request to raw.
func realError(t *testing.T, raw string, timeout time.Duration) error {
	t.Helper()
	c := &http.Client{Timeout: timeout}
	req, err := http.NewRequest(http.MethodPost, raw, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err == nil {
		_ = resp.Body.Close()
		t.Fatalf("POST %s succeeded", raw)
	}
	return err
}

func TestDescribeNamesOnlyTheHostAndTheClass(t *testing.T) {
	// A port nothing listens on: a real "connection refused".
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	_ = l.Close()
	// A server that accepts and never answers: a real timeout.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	hangAddr := strings.TrimPrefix(hang.URL, "http://")
	// A server that hangs up mid-request.
	drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		_ = conn.Close()
	}))
	defer drop.Close()
	dropAddr := strings.TrimPrefix(drop.URL, "http://")
	// A TLS server whose certificate nobody trusts.
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer tlsSrv.Close()
	tlsAddr := strings.TrimPrefix(tlsSrv.URL, "https://")

	tests := []struct {
		name string
		raw  string
		err  func(raw string) error
		want string
	}{
		{name: "userinfo URL, connection refused",
			raw:  "http://pim:s3cr3t-pw@" + closedAddr + "/broken/86da1f0c9e?key=86da1f0c9e",
			err:  func(raw string) error { return realError(t, raw, 5*time.Second) },
			want: "POST to " + closedAddr + " failed: connection refused"},
		{name: "query token, timeout",
			raw:  "http://" + hangAddr + "/hooks/T0KEN-PATH?token=q-tok-77",
			err:  func(raw string) error { return realError(t, raw, 50*time.Millisecond) },
			want: "POST to " + hangAddr + " failed: timeout"},
		{name: "trailing newline from kubectl create secret --from-file",
			raw:  "http://" + dropAddr + "/nl/86da1f0c9e\n",
			err:  func(raw string) error { return realError(t, strings.TrimSpace(raw), 5*time.Second) },
			want: "POST to " + dropAddr + " failed: connection closed by the server"},
		{name: "untrusted certificate",
			raw:  "https://pim:s3cr3t-pw@" + tlsAddr + "/T0KEN-PATH",
			err:  func(raw string) error { return realError(t, raw, 5*time.Second) },
			want: "POST to " + tlsAddr + " failed: TLS handshake failed: certificate signed by an unknown authority (set caBundle?)"},
		{name: "DNS lookup failed",
			raw: "https://hooks.invalid/T0KEN-PATH",
			err: func(string) error {
				return &url.Error{Op: "Post", URL: "https://hooks.invalid/T0KEN-PATH", Err: &net.DNSError{Err: "no such host", Name: "hooks.invalid"}}
			},
			want: "POST to hooks.invalid failed: DNS lookup failed"},
		{name: "invalid URL: control character (Go's error quotes the whole URL)",
			raw:  "http://127.0.0.1/86da1f0c9e\x7f?key=q-tok-77",
			err:  func(raw string) error { return realError(t, raw, time.Second) },
			want: "invalid URL"},
		{name: "invalid URL: no scheme",
			raw:  "pim:s3cr3t-pw@hooks.example.com/T0KEN-PATH",
			err:  func(string) error { return errors.New("unsupported protocol scheme") },
			want: "invalid URL: the scheme must be http or https"},
		{name: "unknown error: its text is never used",
			raw:  "https://hooks.example.com/T0KEN-PATH",
			err:  func(string) error { return errors.New("something about https://hooks.example.com/T0KEN-PATH") },
			want: "POST to hooks.example.com failed: request failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err(tt.raw)
			got := Describe(tt.raw, err)
			if got != tt.want {
				t.Errorf("Describe = %q, want %q (error was %q)", got, tt.want, err)
			}
			noSecret(t, "Describe", got)
		})
	}
}

func TestClass(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&url.Error{Op: "Post", URL: "x", Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}, "connection refused"},
		{&url.Error{Op: "Post", URL: "x", Err: &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}, "connection reset by the server"},
		{&url.Error{Op: "Post", URL: "x", Err: context.DeadlineExceeded}, "timeout"},
		{fmt.Errorf("wrapped: %w", context.Canceled), "cancelled"},
		{&url.Error{Op: "Post", URL: "x", Err: io.EOF}, "connection closed by the server"},
		{&url.Error{Op: "Post", URL: "x", Err: &tls.CertificateVerificationError{Err: x509.HostnameError{Host: "h", Certificate: &x509.Certificate{}}}}, "TLS handshake failed: the certificate is not valid for the host"},
		{&url.Error{Op: "Post", URL: "x", Err: tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}}, "TLS handshake failed"},
		{&url.Error{Op: "Post", URL: "x", Err: &net.DNSError{Err: "no such host", Name: "h", IsNotFound: true}}, "DNS lookup failed"},
	}
	for _, tt := range tests {
		if got := Class(tt.err); got != tt.want {
			t.Errorf("Class(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestAnsweredWithholdsAnAnswerThatEchoesTheURL(t *testing.T) {
	raw := "https://pim:s3cr3t-pw@hooks.example.com:8443/services/T0KEN-PATH?key=q-tok-77\n"
	tests := []struct {
		body, want string
	}{
		{"", "hooks.example.com:8443 answered 503 Service Unavailable"},
		{"invalid_payload\n", "hooks.example.com:8443 answered 503 Service Unavailable: invalid_payload"},
		{"Cannot POST /services/T0KEN-PATH", "hooks.example.com:8443 answered 503 Service Unavailable: (the answer repeats part of the URL; not shown)"},
		{"Cannot POST /services/t0ken-path", "hooks.example.com:8443 answered 503 Service Unavailable: (the answer repeats part of the URL; not shown)"},
		{"bad key q-tok-77", "hooks.example.com:8443 answered 503 Service Unavailable: (the answer repeats part of the URL; not shown)"},
		{"user pim password s3cr3t-pw refused", "hooks.example.com:8443 answered 503 Service Unavailable: (the answer repeats part of the URL; not shown)"},
	}
	for _, tt := range tests {
		got := Answered(raw, "503 Service Unavailable", []byte(tt.body))
		if got != tt.want {
			t.Errorf("Answered(%q) = %q, want %q", tt.body, got, tt.want)
		}
		noSecret(t, "Answered", got)
	}
}

func TestParseTrimsAndChecks(t *testing.T) {
	u, err := Parse("  https://hooks.example.com/T0KEN-PATH\n")
	if err != nil || u.Host != "hooks.example.com" || u.Path != "/T0KEN-PATH" {
		t.Fatalf("Parse: %v, %v", u, err)
	}
	for _, bad := range []string{"", "hooks.example.com/x", "ftp://h/x", "http:///x", "http://h/\x00"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		} else {
			noSecret(t, "Parse error", err.Error())
		}
	}
	if got := Host("https://pim:s3cr3t-pw@hooks.example.com:8443/T0KEN-PATH?key=q-tok-77"); got != "hooks.example.com:8443" {
		t.Errorf("Host = %q", got)
	}
}
