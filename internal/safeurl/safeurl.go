// Package safeurl describes failures of requests to URLs that are
// themselves credentials (Slack, Teams and JSON webhook URLs, the audit
// sink): whoever reads the URL can post to the channel, so no message
// kubepim writes — status, Events, logs, errors — may contain any part of
// it but the host.
//
// The rule is "never format the URL", not "format it and then redact it":
// Go's own errors rewrite URLs (net/url masks a password as "***", quotes
// a URL with a trailing newline as "…\n"), so a search for the URL in the
// message misses them. Messages are therefore built here from a closed set
// of phrases, the host, and a status code.
package safeurl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"unicode"
)

// Parse parses a secret URL, trimmed of surrounding whitespace (a Secret
// made with `kubectl create secret --from-file` ends in a newline), and
// checks that it is an absolute http(s) URL. Its error never contains the
// URL.
func Parse(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, errors.New("invalid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("invalid URL: the scheme must be http or https")
	}
	if u.Host == "" {
		return nil, errors.New("invalid URL: it has no host")
	}
	return u, nil
}

// Host is the part of a secret URL that may be shown: host and port,
// without user, password, path or query. It is "" when raw does not parse.
func Host(raw string) string {
	u, err := Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// Class names what went wrong with a request in words that hold nothing of
// the request: "connection refused", "timeout", "TLS handshake failed",
// "DNS lookup failed", ... It unwraps *url.Error and the net errors
// beneath; an error it does not know is "request failed".
func Class(err error) string {
	var (
		dnsErr     *net.DNSError
		netErr     net.Error
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		verifyErr  *tls.CertificateVerificationError
		recordErr  tls.RecordHeaderError
		alertErr   tls.AlertError
	)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.As(err, &dnsErr):
		return "DNS lookup failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the server"
	case errors.As(err, &unknownCA), errors.As(err, &verifyErr) && errors.As(verifyErr.Err, &unknownCA):
		return "TLS handshake failed: certificate signed by an unknown authority (set caBundle?)"
	case errors.As(err, &hostErr):
		return "TLS handshake failed: the certificate is not valid for the host"
	case errors.As(err, &invalidErr):
		return "TLS handshake failed: invalid certificate"
	case errors.As(err, &verifyErr), errors.As(err, &recordErr), errors.As(err, &alertErr):
		return "TLS handshake failed"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the server"
	}
	return "request failed"
}

// Describe says why a request to the secret URL raw failed, naming only
// its host and the class of the error: "POST to hooks.example.com:443
// failed: connection refused". err's own text is never used.
func Describe(raw string, err error) string {
	if _, perr := Parse(raw); perr != nil {
		return perr.Error()
	}
	return fmt.Sprintf("POST to %s failed: %s", Host(raw), Class(err))
}

// Answered says that the receiver at raw answered with a failure status,
// with what it said when that holds nothing of the URL (receivers echo the
// path or query in error pages: "Cannot POST /services/T0/B0/token").
func Answered(raw, status string, body []byte) string {
	msg := fmt.Sprintf("%s answered %s", Host(raw), status)
	switch s, ok := Clean(string(body), Fragments(raw)...); {
	case !ok:
		msg += ": (the answer repeats part of the URL; not shown)"
	case s != "":
		msg += ": " + s
	}
	return msg
}

// Fragments are the parts of a secret URL that must not be shown, also in
// their escaped forms: user, password, path segments, query values and
// fragment.
func Fragments(raw string) []string {
	raw = strings.TrimSpace(raw)
	out := []string{raw}
	u, err := url.Parse(raw)
	if err != nil {
		return out
	}
	if u.User != nil {
		out = append(out, u.User.Username())
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	for _, p := range []string{u.Path, u.EscapedPath()} {
		for seg := range strings.SplitSeq(p, "/") {
			out = append(out, seg)
		}
	}
	out = append(out, u.RawQuery, u.Fragment)
	for _, vs := range u.Query() {
		out = append(out, vs...)
	}
	return out
}

// Clean makes a remote party's text (an HTTP answer, an SMTP reply) fit
// for status: one line of printable text, at most 200 characters. ok is
// false when the text contains any of the secrets, compared
// case-insensitively: such text is withheld, not edited, so no rewritten
// form of a secret can slip through.
func Clean(text string, secrets ...string) (clean string, ok bool) {
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, text)
	s = strings.Join(strings.Fields(s), " ")
	lower := strings.ToLower(s)
	for _, f := range secrets {
		if f = strings.TrimSpace(f); f != "" && strings.Contains(lower, strings.ToLower(f)) {
			return "", false
		}
	}
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s, true
}
