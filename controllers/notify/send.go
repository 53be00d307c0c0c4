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
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
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
func post(ctx context.Context, t Target, n *pimv1.Notification, tlsConfig *tls.Config) Result {
	url := string(t.Secret[SecretKeyURL])
	if url == "" {
		return Result{Err: fmt.Errorf("secret %q has no key %q", secretName(t.Channel), SecretKeyURL)}
	}
	body, err := Payload(t.Channel.Spec.Type, n)
	if err != nil {
		return Result{Err: err, Permanent: true}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		// The URL itself is wrong; a fixed Secret is read on the next try.
		return Result{Err: fmt.Errorf("webhook URL: %w", redact(err, url))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kubepim")
	req.Header.Set("X-Kubepim-Notification", n.Name)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	defer transport.CloseIdleConnections()
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return Result{Err: redact(err, url)}
	}
	defer func() { _ = resp.Body.Close() }()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode/100 == 2 {
		return Result{}
	}
	err = fmt.Errorf("webhook answered %s: %s", resp.Status, bytes.TrimSpace(snippet))
	permanent := resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests
	return Result{Err: err, Permanent: permanent}
}

// redact keeps a webhook's URL, which is its credential, out of errors
// that end up in status and logs.
func redact(err error, url string) error {
	if url == "" {
		return err
	}
	return errors.New(string(bytes.ReplaceAll([]byte(err.Error()), []byte(url), []byte("<webhook URL>"))))
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
	if user := string(t.Secret[SecretKeyUsername]); user != "" {
		if s.Security == pimv1.SMTPNone {
			return Result{Err: errors.New("refusing to send SMTP credentials without TLS (security: None)"), Permanent: true}
		}
		if err := c.Auth(sasl.NewPlainClient("", user, string(t.Secret[SecretKeyPassword]))); err != nil {
			return smtpResult(nil, fmt.Errorf("authentication: %w", err))
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

func isPermanentSMTP(err error) bool {
	var smtpErr *smtp.SMTPError
	return errors.As(err, &smtpErr) && smtpErr.Code/100 == 5
}

func smtpResult(delivered []string, err error) Result {
	return Result{DeliveredTo: delivered, Err: err, Permanent: isPermanentSMTP(err)}
}
