package audit

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/authz"
)

// +kubebuilder:rbac:groups=kubepim.io,resources=auditevents,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=core,namespace=kubepim-system,resources=configmaps,verbs=get;create;update
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=selfsubjectreviews,verbs=create

// Filter selects events for an export.
type Filter struct {
	Since, Until time.Time
	Role         string
	User         string
	Action       string
}

// Matches reports whether ev passes the filter. User matches the actor, or
// a subject that is that user (a User of that name, or the ServiceAccount a
// "system:serviceaccount:NS:NAME" user is); Role matches the role's name,
// whatever its kind.
func (f Filter) Matches(ev *pimv1.AuditEvent) bool {
	s := ev.Spec
	switch {
	case !f.Since.IsZero() && s.Time.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && !s.Time.Time.Before(f.Until):
		return false
	case f.Role != "" && (s.RoleRef == nil || s.RoleRef.Name != f.Role):
		return false
	case f.Action != "" && !strings.EqualFold(s.Action, f.Action):
		return false
	case f.User != "" && (s.Actor == nil || s.Actor.Username != f.User) && !subjectIsUser(s.Subject, f.User):
		return false
	}
	return true
}

func subjectIsUser(s *pimv1.Subject, user string) bool {
	switch {
	case s == nil:
		return false
	case s.Kind == pimv1.SubjectKindServiceAccount:
		return user == "system:serviceaccount:"+s.Namespace+":"+s.Name
	case s.Kind == pimv1.SubjectKindGroup:
		return false
	}
	return s.Name == user
}

// CSVHeader is the first row of a CSV export.
var CSVHeader = []string{"sequence", "time", "action", "outcome", "actor", "actorGroups", "subjectKind", "subject",
	"roleKind", "role", "namespace", "targetKind", "target", "targetUID", "justification", "ticket", "reason", "details", "hash"}

// CSVRow is an event as a CSV row, in CSVHeader's order.
func CSVRow(ev *pimv1.AuditEvent) []string {
	s := ev.Spec
	row := []string{strconv.FormatInt(s.Sequence, 10), s.Time.UTC().Format(time.RFC3339), s.Action, s.Outcome, "", "", "", "", "", "", s.Namespace, "", "", "", s.Justification, "", s.Reason, "", s.Hash}
	if s.Actor != nil {
		row[4], row[5] = s.Actor.Username, strings.Join(s.Actor.Groups, ";")
	}
	if s.Subject != nil {
		row[6], row[7] = s.Subject.Kind, s.Subject.Name
	}
	if s.RoleRef != nil {
		row[8], row[9] = s.RoleRef.Kind, s.RoleRef.Name
	}
	if s.Target != nil {
		row[11], row[12], row[13] = s.Target.Kind, s.Target.Name, s.Target.UID
	}
	if s.Ticket != nil {
		row[15] = s.Ticket.System + ":" + s.Ticket.Number
	}
	if len(s.Details) > 0 {
		d, _ := json.Marshal(s.Details)
		row[17] = string(d)
	}
	return row
}

// Export writes the events that match f, in chain order, as "csv" or
// "json" (one JSON object a line). It pages through the API and keeps only
// the matching events.
//
// With f.Since, only the events of the range's days are read
// (RangeSelector), when every event is labelled; an open range ends at
// now.
func Export(ctx context.Context, c client.Reader, f Filter, now time.Time, format string, w io.Writer) error {
	var opts []client.ListOption
	sel, _, err := RangeSelector(ctx, c, f.Since, f.Until, now)
	if err != nil {
		return err
	}
	if sel != nil {
		opts = append(opts, sel)
	}
	var events []*pimv1.AuditEvent
	err = EachWhere(ctx, c, func(ev *pimv1.AuditEvent) error {
		if f.Matches(ev) {
			events = append(events, ev)
		}
		return nil
	}, opts...)
	if err != nil {
		return err
	}
	slices.SortFunc(events, func(a, b *pimv1.AuditEvent) int { return cmpInt64(a.Spec.Sequence, b.Spec.Sequence) })
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		for _, ev := range events {
			if err := enc.Encode(struct {
				Name string `json:"name"`
				pimv1.AuditEventSpec
			}{ev.Name, ev.Spec}); err != nil {
				return err
			}
		}
		return nil
	case "csv", "":
		cw := csv.NewWriter(w)
		if err := cw.Write(CSVHeader); err != nil {
			return err
		}
		for _, ev := range events {
			if err := cw.Write(CSVRow(ev)); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	}
	return fmt.Errorf("unknown format %q: use csv or json", format)
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ExportHandler serves GET /audit?since=&until=&role=&user=&action=&format=csv|json
// to callers whose bearer token the API server authenticates (TokenReview)
// and who may list auditevents.kubepim.io (SubjectAccessReview).
type ExportHandler struct {
	// Client reads events and reviews tokens and access.
	Client client.Client
	// Clock ends an open range (nil: the real clock).
	Clock clock.PassiveClock
}

func (h *ExportHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	status, msg := authz.Check(r.Context(), h.Client, r, authz.Attributes{
		Resource: &authorizationv1.ResourceAttributes{Group: pimv1.GroupVersion.Group, Resource: "auditevents", Verb: "list"},
	})
	if status != http.StatusOK {
		http.Error(w, msg, status)
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	f := Filter{Role: q.Get("role"), User: q.Get("user"), Action: q.Get("action")}
	for key, into := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(key); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				http.Error(w, fmt.Sprintf("%s must be an RFC 3339 time, for example 2026-11-24T00:00:00Z", key), http.StatusBadRequest)
				return
			}
			*into = t
		}
	}
	format := q.Get("format")
	switch format {
	case "json":
		w.Header().Set("Content-Type", "application/x-ndjson")
	case "csv", "":
		w.Header().Set("Content-Type", "text/csv")
	default:
		http.Error(w, "format must be csv or json", http.StatusBadRequest)
		return
	}
	clk := h.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	if err := Export(ctx, h.Client, f, clk.Now(), format, w); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
