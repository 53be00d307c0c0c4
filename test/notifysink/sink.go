// Package notifysink runs the receiving end of kubepim's notification
// channels for tests and local development: an HTTP server that captures
// webhook posts (JSON, Slack, Teams) and an SMTP server (the server side of
// github.com/emersion/go-smtp) that captures mail. Either can be told to
// fail, to exercise kubepim's retries.
package notifysink

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Post is one captured HTTP request.
type Post struct {
	Path   string
	Header http.Header
	Body   []byte
}

// HTTP captures POSTs. Paths listed in FailFirst answer 503 that many
// times before accepting.
type HTTP struct {
	*httptest.Server
	mu        sync.Mutex
	posts     []Post
	failFirst map[string]int
	status    map[string]int
	hold      map[string]chan struct{}
}

// NewHTTP starts a capturing HTTP server on 127.0.0.1.
func NewHTTP() *HTTP {
	h := &HTTP{failFirst: map[string]int{}, status: map[string]int{}, hold: map[string]chan struct{}{}}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	return h
}

// NewHTTPOn starts a capturing HTTP server on addr.
func NewHTTPOn(addr string) (*HTTP, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	h := &HTTP{failFirst: map[string]int{}, status: map[string]int{}, hold: map[string]chan struct{}{}}
	h.Server = &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(h.serve), ReadHeaderTimeout: 10 * time.Second}}
	h.Start()
	return h, nil
}

// FailFirst makes path answer 503 to its next n requests.
func (h *HTTP) FailFirst(path string, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failFirst[path] = n
}

// AlwaysAnswer makes path answer status to every request (0: accept).
func (h *HTTP) AlwaysAnswer(path string, status int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.status[path] = status
}

// Hold makes requests to path wait until the returned function is called.
func (h *HTTP) Hold(path string) (release func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan struct{})
	h.hold[path] = ch
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (h *HTTP) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	hold := h.hold[r.URL.Path]
	h.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.status[r.URL.Path]; s != 0 {
		http.Error(w, "refused by the test sink", s)
		return
	}
	if h.failFirst[r.URL.Path] > 0 {
		h.failFirst[r.URL.Path]--
		http.Error(w, "the test sink fails on purpose", http.StatusServiceUnavailable)
		return
	}
	h.posts = append(h.posts, Post{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok"))
}

// Posts returns the accepted posts to path ("" for all).
func (h *HTTP) Posts(path string) []Post {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Post
	for _, p := range h.posts {
		if path == "" || p.Path == path {
			out = append(out, p)
		}
	}
	return out
}

// Mail is one captured message.
type Mail struct {
	From string
	To   string
	Data []byte
}

// SMTP captures mail. With a certificate it offers STARTTLS; with a
// username it requires AUTH PLAIN (only over TLS).
type SMTP struct {
	Server *smtp.Server
	Addr   string
	// CertPEM is the server's self-signed certificate, to trust.
	CertPEM  string
	mu       sync.Mutex
	mails    []Mail
	failRcpt map[string]int
	username string
	password string
}

// NewSMTP starts an SMTP server on addr ("127.0.0.1:0" for any port), with
// STARTTLS when withTLS, requiring username/password when username is set.
func NewSMTP(addr string, withTLS bool, username, password string) (*SMTP, error) {
	s := &SMTP{failRcpt: map[string]int{}, username: username, password: password}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{sink: s}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.MaxRecipients = 50
	if withTLS {
		cert, certPEM, err := selfSigned()
		if err != nil {
			return nil, err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.CertPEM = certPEM
	} else {
		srv.AllowInsecureAuth = true
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.Server, s.Addr = srv, l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	return s, nil
}

// Close stops the server.
func (s *SMTP) Close() error { return s.Server.Close() }

// FailRcpt makes the next n RCPT TO:<to> answer 451 (try again later).
func (s *SMTP) FailRcpt(to string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failRcpt[to] = n
}

// Mails returns the captured mail to an address ("" for all).
func (s *SMTP) Mails(to string) []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Mail
	for _, m := range s.mails {
		if to == "" || m.To == to {
			out = append(out, m)
		}
	}
	return out
}

type session struct {
	sink   *SMTP
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.sink.username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != ss.sink.username || password != ss.sink.password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.sink.username != "" && !ss.authed {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.sink.mu.Lock()
	defer ss.sink.mu.Unlock()
	if ss.sink.failRcpt[to] > 0 {
		ss.sink.failRcpt[to]--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later (test sink)"}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.sink.mu.Lock()
	defer ss.sink.mu.Unlock()
	for _, to := range ss.to {
		ss.sink.mails = append(ss.sink.mails, Mail{From: ss.from, To: to, Data: data})
	}
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and localhost.
func selfSigned() (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "notifysink"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return cert, string(certPEM), err
}

// Message is a captured mail, decoded.
type Message struct {
	Header  mail.Header
	Subject string
	Body    string
}

// Parse decodes a captured mail: its headers, its subject (RFC 2047) and
// its quoted-printable body.
func (m Mail) Parse() (Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return Message{}, err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return Message{}, err
	}
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(msg.Body)
	}
	text, err := io.ReadAll(body)
	if err != nil {
		return Message{}, err
	}
	return Message{Header: msg.Header, Subject: subject, Body: strings.ReplaceAll(string(text), "\r\n", "\n")}, nil
}
