package main

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// page is what every template gets.
type page struct {
	Title string
	// Nav is the navigation entry to mark current.
	Nav        string
	Me         *pimv1.UserInfo
	MFA        bool
	CSRF       string
	Flash      string
	FlashError bool
	Error      string
	// Refresh, when set, reloads the page after that many seconds (a
	// request on its way to Active) in a browser without script.
	Refresh int
	// Live, when set, is the request's Server-Sent Events stream, which
	// live.js follows to update the page in place (instead of Refresh).
	Live string
	Now  time.Time
	Data any
}

var pageNames = []string{"signin", "error", "roles", "activate", "requests", "request", "approvals", "reviews", "review", "audit", "history", "settings", "alerts", "assignments"}

var funcs = template.FuncMap{
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		case *time.Time:
			if v == nil {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		return fmt.Sprint(t)
	},
	"rel":   relative,
	"dur":   shortDuration,
	"scope": scope,
	// rule: one rule of a reduced scope, in full. Not policy.ScopeSummary,
	// which cuts the whole at 1 KiB for notifications: a requester could
	// pad early rules to push a later one past the cut, and approvers must
	// see every rule they approve.
	"rule":  policy.RuleSummary,
	"join":  strings.Join,
	"lower": strings.ToLower,
	"list":  func(xs ...string) []string { return xs },
	"decideData": func(name, csrf, back string) any {
		return struct{ Name, CSRF, Back string }{name, csrf, back}
	},
}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "web/templates/layout.html", "web/templates/partials.html", "web/templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.Now.IsZero() {
		p.Now = s.opts.Clock.Now()
	}
	var buf strings.Builder
	if err := s.pages[name].Execute(&buf, p); err != nil {
		s.opts.Log.Error("rendering a page", "page", name, "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "error", page{Title: http.StatusText(status), Error: msg})
}

// page renders a page for the signed-in user.
func (q *request) page(s *Server, status int, name string, p page) {
	p.Me, p.CSRF = &q.me, q.sess.CSRF
	p.MFA = s.mfaClaimed(q.me)
	if p.Flash == "" {
		p.Flash, p.FlashError = q.flash, q.flashError
	}
	s.render(q.w, q.r, status, name, p)
}

// relative says how far t is from now: "in 59m", "3m ago".
func relative(now time.Time, t any) string {
	var at time.Time
	switch v := t.(type) {
	case time.Time:
		at = v
	case *time.Time:
		if v == nil {
			return ""
		}
		at = *v
	default:
		return ""
	}
	d := at.Sub(now)
	if d >= 0 {
		return "in " + shortDuration(d.Round(time.Second))
	}
	return shortDuration((-d).Round(time.Second)) + " ago"
}

// shortDuration writes 4h, 30m, 1h30m, 2d3h rather than 4h0m0s.
func shortDuration(d time.Duration) string {
	if d >= 48*time.Hour {
		d = d.Round(time.Hour)
		days := d / (24 * time.Hour)
		rest := d - days*24*time.Hour
		if rest == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%s", days, shortDuration(rest))
	}
	if d >= time.Hour {
		d = d.Round(time.Minute)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func scope(namespace string) string {
	if namespace == "" {
		return "all namespaces"
	}
	return namespace
}
