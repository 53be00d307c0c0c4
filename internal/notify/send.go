package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/safeurl"
)

// Secret keys a channel's Secret holds.
const (
	SecretKeyURL      = "url"
	SecretKeyUsername = "username"
	SecretKeyPassword = "password"
)

// DefaultTimeout bounds one delivery attempt when the channel sets none.
const DefaultTimeout = 10 * time.Second

// Target is a channel with what its Secret holds.
type Target struct {
	Channel *pimv1.NotificationChannel
	// Secret is the data of the channel's Secret (nil when it has none).
	Secret map[string][]byte
}

// Result is the outcome of one attempt.
type Result struct {
	// DeliveredTo are the addresses that accepted the message in this
	// attempt (mail only).
	DeliveredTo []string
	// Err is why the attempt, or part of it, failed.
	Err error
	// Permanent says that trying again cannot help: the receiver refused
	// the message for good (HTTP 4xx other than 408 and 429, SMTP 5xx).
	Permanent bool
}

// Deliver makes one attempt at delivering n to the target; for mail, only
// to the addresses not delivered to yet.
func Deliver(ctx context.Context, t Target, n *pimv1.Notification, now time.Time) Result {
	timeout := DefaultTimeout
	if t.Channel.Spec.Timeout.Duration > 0 {
		timeout = t.Channel.Spec.Timeout.Duration
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tlsConfig, err := tlsConfigFor(t.Channel)
	if err != nil {
		return Result{Err: err, Permanent: true}
	}
	switch t.Channel.Spec.Type {
	case pimv1.ChannelWebhook, pimv1.ChannelSlack, pimv1.ChannelTeams:
		return post(ctx, t, n, tlsConfig)
	case pimv1.ChannelSMTP:
		return sendMail(ctx, t, n, now, tlsConfig)
	}
	return Result{Err: fmt.Errorf("unknown channel type %q", t.Channel.Spec.Type), Permanent: true}
}

func tlsConfigFor(ch *pimv1.NotificationChannel) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ch.Spec.CABundle == "" {
		return cfg, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM([]byte(ch.Spec.CABundle)) {
		return nil, errors.New("caBundle holds no PEM certificate")
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// post sends an HTTP channel's JSON. Any 2xx is delivered.
//
// The URL is the channel's credential: no error here formats it. Failures
// are described by safeurl from its host, the status code and a fixed
// class of error (see package safeurl for why redacting afterwards is not
// enough).
func post(ctx context.Context, t Target, n *pimv1.Notification, tlsConfig *tls.Config) Result {
	raw := secretValue(t.Secret, SecretKeyURL)
	if raw == "" {
		return Result{Err: fmt.Errorf("secret %q has no key %q", secretName(t.Channel), SecretKeyURL)}
	}
	u, err := safeurl.Parse(raw)
	if err != nil {
		// The URL itself is wrong; a fixed Secret is read on the next try.
		return Result{Err: fmt.Errorf("webhook URL in secret %q: %w", secretName(t.Channel), err)}
	}
	body, err := Payload(t.Channel.Spec.Type, n)
	if err != nil {
		return Result{Err: err, Permanent: true}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return Result{Err: errors.New(safeurl.Describe(raw, err))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kubepim")
	req.Header.Set("X-Kubepim-Notification", n.Name)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	defer transport.CloseIdleConnections()
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return Result{Err: errors.New(safeurl.Describe(raw, err))}
	}
	defer func() { _ = resp.Body.Close() }()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode/100 == 2 {
		return Result{}
	}
	err = errors.New("webhook at " + safeurl.Answered(raw, resp.Status, snippet))
	permanent := resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests
	return Result{Err: err, Permanent: permanent}
}

// secretValue reads one value of a channel's Secret without the
// whitespace around it: `kubectl create secret --from-file` keeps the
// file's final newline, which would otherwise become part of a URL, user
// name or password.
func secretValue(data map[string][]byte, key string) string {
	return strings.TrimSpace(string(data[key]))
}

func secretName(ch *pimv1.NotificationChannel) string {
	if ch.Spec.SecretRef == nil {
		return ""
	}
	return ch.Spec.SecretRef.Name
}

// sendMail sends one message per address not yet delivered to, over one
// connection, and reports which addresses took it.
func sendMail(ctx context.Context, t Target, n *pimv1.Notification, now time.Time, tlsConfig *tls.Config) Result {
	s := t.Channel.Spec.SMTP
	if s == nil {
		return Result{Err: errors.New("the channel has no smtp settings"), Permanent: true}
	}
	var pending []string
	for _, to := range n.Spec.To {
		if !slices.Contains(n.Status.DeliveredTo, to) {
			pending = append(pending, to)
		}
	}
	if len(pending) == 0 {
		return Result{}
	}
	c, err := dialSMTP(ctx, s, tlsConfig)
	if err != nil {
		return smtpResult(nil, err)
	}
	defer func() { _ = c.Close() }()
	if user := secretValue(t.Secret, SecretKeyUsername); user != "" {
		if s.Security == pimv1.SMTPNone {
			return Result{Err: errors.New("refusing to send SMTP credentials without TLS (security: None)"), Permanent: true}
		}
		password := secretValue(t.Secret, SecretKeyPassword)
		if err := c.Auth(sasl.NewPlainClient("", user, password)); err != nil {
			return smtpResult(nil, authError(err, user, password))
		}
	}
	var delivered []string
	var errs []error
	permanent := true
	for _, to := range pending {
		msg, err := Email(n, s.From, to, now)
		if err == nil {
			err = c.SendMail(s.From, []string{to}, bytes.NewReader(msg))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", to, err))
			permanent = permanent && isPermanentSMTP(err)
			// The transaction may be half open: start the next afresh.
			if rerr := c.Reset(); rerr != nil {
				errs = append(errs, rerr)
				permanent = false
				break
			}
			continue
		}
		delivered = append(delivered, to)
	}
	_ = c.Quit()
	if len(errs) == 0 {
		return Result{DeliveredTo: delivered}
	}
	return Result{DeliveredTo: delivered, Err: errors.Join(errs...), Permanent: permanent}
}

func dialSMTP(ctx context.Context, s *pimv1.SMTPSettings, tlsConfig *tls.Config) (*smtp.Client, error) {
	port := s.Port
	if port == 0 {
		port = 587
	}
	addr := net.JoinHostPort(s.Host, strconv.Itoa(int(port)))
	tlsConfig = tlsConfig.Clone()
	tlsConfig.ServerName = s.Host
	dialer := &net.Dialer{}
	var conn net.Conn
	var err error
	if s.Security == pimv1.SMTPTLS {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: tlsConfig}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	switch s.Security {
	case pimv1.SMTPNone, pimv1.SMTPTLS:
		c := smtp.NewClient(conn)
		if err := c.Hello("kubepim"); err != nil {
			_ = c.Close()
			return nil, err
		}
		return c, nil
	default:
		// NewClientStartTLS fails when the server offers no STARTTLS: mail
		// never silently falls back to plain text.
		return smtp.NewClientStartTLS(conn, tlsConfig)
	}
}

// authError describes a failed SMTP login. The server's reply is shown
// only when it repeats neither the user name nor the password (some
// servers echo what they were sent); the SMTP code is always kept, so that
// a 5xx still counts as permanent.
func authError(err error, user, password string) error {
	var smtpErr *smtp.SMTPError
	if errors.As(err, &smtpErr) {
		msg, ok := safeurl.Clean(smtpErr.Message, user, password)
		if !ok {
			msg = "(the reply repeats the credentials; not shown)"
		}
		return fmt.Errorf("authentication: %w", &smtp.SMTPError{Code: smtpErr.Code, EnhancedCode: smtpErr.EnhancedCode, Message: msg})
	}
	if _, ok := safeurl.Clean(err.Error(), user, password); !ok {
		return errors.New("authentication failed")
	}
	return fmt.Errorf("authentication: %w", err)
}

func isPermanentSMTP(err error) bool {
	var smtpErr *smtp.SMTPError
	return errors.As(err, &smtpErr) && smtpErr.Code/100 == 5
}

func smtpResult(delivered []string, err error) Result {
	return Result{DeliveredTo: delivered, Err: err, Permanent: isPermanentSMTP(err)}
}
