package console

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/skillbox-dev/skillbox/manifest"
	"github.com/skillbox-dev/skillbox/review"
	"github.com/skillbox-dev/skillbox/runtime/approval"
	"github.com/skillbox-dev/skillbox/runtime/audit"
	"github.com/skillbox-dev/skillbox/runtime/engine"
)

var funcs = template.FuncMap{
	"ago": func(t time.Time) string { return manifest.Duration(time.Since(t).Round(time.Second)).String() },
	"utc": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 MST") },
	// kill is what an action form needs: the skill, the caller's CSRF token and the
	// page to come back to.
	"kill": func(name, csrf, from string) actionForm { return actionForm{Name: name, CSRF: csrf, From: from} },
	// plainSecretRisk is what `skillbox review` says of a plain secret.
	"plainSecretRisk": func() string { return review.PlainSecretRisk },
}

type actionForm struct{ Name, CSRF, From string }

// page is what every page's layout needs.
type page struct {
	Title string
	Who   string
	CSRF  string
	// Session: the caller signed in with a token (a logout button is offered).
	Session bool
	// Flash is the outcome of the last action, told once.
	Flash string
	Error string
}

func (c *Console) page(r *http.Request, a actor, title string) page {
	p := page{Title: title, Who: a.who, CSRF: a.csrf, Session: a.session}
	// The outcome of an action comes back in the redirect's query: a fixed set of
	// words, never text from the request.
	skill := r.URL.Query().Get("skill")
	if manifest.CheckName(skill) != nil {
		return p
	}
	switch r.URL.Query().Get("done") {
	case "allowed":
		p.Flash = "Allowed the call of " + skill + ": it runs now."
	case "denied":
		p.Flash = "Denied the call of " + skill + ": its caller is told why."
	case "disabled":
		p.Flash = "Disabled " + skill + ": new calls are refused, calls in flight were cancelled."
	case "enabled":
		p.Flash = "Enabled " + skill + "."
	}
	return p
}

// skillRow is one skill on the overview.
type skillRow struct {
	Name, Version, State, Signer, Sandbox string
	Disabled, Approved                    bool
	Risks                                 int
}

// callRow is one call in flight.
type callRow struct {
	ID, Skill, Version, Caller string
	Started                    time.Time
}

// pendingRow is one call waiting for a decision, as its approver must see it: the
// skill, the caller, the input, the grant in plain words and the time left.
type pendingRow struct {
	ID, Skill, Version, Caller, Door string
	// Input is the input as approvers see it (approval.InputView: the parsed value,
	// indented, characters that could disguise text escaped). On the overview it is cut
	// to maxInputShown, and then Cut is set: the overview offers no Allow beside it,
	// only a link to the request's own page, which shows it whole (Whole).
	Input               string
	Cut, Whole          bool
	InputBytes          int
	InputSHA256, Digest string
	Approvers           []string
	Reason              string // the operator's note from the grant
	Review              string
	Expires             time.Time
	Left                string
	CSRF                string // the forms' CSRF token
}

// maxInputShown bounds the input shown on the overview; its size and sha256 are
// beside it, and the request's own page shows it whole.
const maxInputShown = 4 << 10

type overviewView struct {
	page
	Pending []pendingRow
	Skills  []skillRow
	Calls   []callRow
	// State names what the overview lists (requests, calls, skills' states): while a
	// call waits the page does not reload itself, its script fetches the overview and
	// offers a reload when State differs.
	State string
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, a actor) {
	v := overviewView{page: c.page(r, a, "Overview")}
	infos, err := c.cfg.Engine.List(r.Context())
	if err != nil {
		v.Error = "The skill list is unavailable: " + engine.OneLine(err.Error())
	}
	state := sha256.New()
	for _, in := range infos {
		row := rowOf(in)
		v.Skills = append(v.Skills, row)
		fmt.Fprintf(state, "skill %q %q %q\n", row.Name, row.Version, row.State)
	}
	for _, call := range c.cfg.Engine.Calls() {
		v.Calls = append(v.Calls, callRow{ID: call.ID, Skill: call.Skill, Version: call.Version, Caller: call.Caller, Started: call.Started})
		fmt.Fprintf(state, "call %q\n", call.ID)
	}
	now := time.Now()
	for _, p := range c.cfg.Engine.Pending() {
		row := pendingRowOf(p, a, now)
		if len(row.Input) > maxInputShown {
			row.Input, row.Cut = cut(row.Input, maxInputShown), true
		}
		v.Pending = append(v.Pending, row)
		fmt.Fprintf(state, "pending %q %q\n", p.ID, p.Digest)
	}
	v.State = hex.EncodeToString(state.Sum(nil)[:16])
	c.render(w, http.StatusOK, "overview.html", v)
}

func pendingRowOf(p engine.PendingRequest, a actor, now time.Time) pendingRow {
	return pendingRow{ID: p.ID, Skill: p.Skill, Version: p.Version, Caller: p.Caller, Door: p.Door,
		Input: approval.InputView(p.Input), InputBytes: len(p.Input), InputSHA256: p.InputSHA256, Digest: p.Digest,
		Approvers: p.Approvers, Reason: p.Reason, Review: p.Review, Expires: p.Expires,
		Left: manifest.Duration(p.TimeLeft(now).Round(time.Second)).String(), CSRF: a.csrf}
}

type requestView struct {
	page
	Request pendingRow
}

// request is one pending request's own page: everything the overview shows, the input
// whole, and Allow and Deny. It does not reload itself.
func (c *Console) request(w http.ResponseWriter, r *http.Request, a actor) {
	id := r.PathValue("id")
	for _, p := range c.cfg.Engine.Pending() {
		if p.ID == id {
			row := pendingRowOf(p, a, time.Now())
			row.Whole = true
			c.render(w, http.StatusOK, "request.html", requestView{page: c.page(r, a, "Call of "+p.Skill), Request: row})
			return
		}
	}
	c.render(w, http.StatusNotFound, "error.html", errorView{Title: "Not waiting",
		Message: "No call waits for a decision under this id: it was decided, expired or ended."})
}

func rowOf(in engine.SkillInfo) skillRow {
	m := in.Manifest()
	row := skillRow{Name: in.Entry.Name, Version: in.Entry.Version, Disabled: in.Disabled, Approved: in.Approved,
		Risks: len(review.Describe(m).Risks), Sandbox: m.Sandbox.Kind()}
	switch {
	case in.Approved:
		row.State = "approved"
		row.Signer = in.Approval.Signer
	case in.Approval != nil:
		row.State = "new version not approved"
	default:
		row.State = "not approved"
	}
	if in.Disabled {
		row.State = "disabled (" + row.State + ")"
	}
	return row
}

type skillView struct {
	page
	Skill skillRow
	// Review is the review of the version shown, Verified whether its signature
	// verified against trust.yaml just now (VerifyError says why not).
	Review      review.Report
	Verified    bool
	VerifyError string
	// Grant is the approval's grant in plain words, ApprovedBy and ApprovedAt its
	// approval's.
	Grant      []string
	ApprovedBy string
	ApprovedAt time.Time
	Calls      []callRow
}

func (c *Console) skill(w http.ResponseWriter, r *http.Request, a actor) {
	name := r.PathValue("name")
	in, err := c.cfg.Engine.Get(r.Context(), name, "")
	if err != nil {
		status := http.StatusInternalServerError
		if engine.ReasonOf(err) == engine.ReasonNotFound || engine.ReasonOf(err) == engine.ReasonInvalidInput {
			status = http.StatusNotFound
		}
		c.render(w, status, "error.html", errorView{Title: "No such skill", Message: engine.OneLine(err.Error())})
		return
	}
	v := skillView{page: c.page(r, a, in.Entry.Name), Skill: rowOf(*in)}
	v.Review = review.Describe(in.Manifest())
	v.Review.ManifestDigest, v.Review.CodeDigest = in.Entry.ManifestDigest, in.Entry.CodeDigest
	// The signer is what the signature says now, not what the page assumes.
	cand, err := c.cfg.Engine.Candidate(r.Context(), in.Entry.Name, in.Entry.ManifestDigest)
	if err != nil {
		v.VerifyError = engine.OneLine(err.Error())
	} else {
		v.Verified, v.Review.Signer = true, cand.Signer.String()
	}
	if in.Approved {
		v.Grant = in.Approval.Grant.Words(in.Manifest())
		v.ApprovedBy, v.ApprovedAt = in.Approval.ApprovedBy, in.Approval.ApprovedAt
	}
	for _, call := range c.cfg.Engine.Calls() {
		if call.Skill == in.Entry.Name {
			v.Calls = append(v.Calls, callRow{ID: call.ID, Skill: call.Skill, Version: call.Version, Caller: call.Caller, Started: call.Started})
		}
	}
	c.render(w, http.StatusOK, "skill.html", v)
}

// auditRow is one record of the tail.
type auditRow struct {
	Seq                                         uint64
	Time, Event, Caller, Skill, Outcome, Reason string
	Door, Details                               string
}

type auditView struct {
	page
	OK          bool
	Lines       int
	Head        string
	VerifyError string
	Recoverable bool
	Rows        []auditRow
}

// maxDetails bounds the details shown per record.
const maxDetails = 400

func (c *Console) audit(w http.ResponseWriter, r *http.Request, a actor) {
	v := auditView{page: c.page(r, a, "Audit log")}
	snap, err := audit.ReadSnapshot(c.cfg.Engine.AuditPath(), c.cfg.AuditTail)
	if err != nil {
		v.Error = "The audit log cannot be read: " + engine.OneLine(err.Error())
		c.render(w, http.StatusOK, "audit.html", v)
		return
	}
	v.OK, v.Lines, v.Head = snap.Err == nil, snap.Lines, snap.Head
	if snap.Err != nil {
		v.VerifyError = engine.OneLine(snap.Err.Error())
		var ce *audit.ChainError
		v.Recoverable = errors.As(snap.Err, &ce) && ce.Last
	}
	for i := len(snap.Last) - 1; i >= 0; i-- { // newest first
		e := snap.Last[i]
		row := auditRow{Seq: e.Seq, Time: e.Time, Event: e.Event, Caller: e.Caller, Skill: e.Skill, Outcome: e.Outcome, Reason: e.Reason}
		if d, ok := e.Details["door"].(string); ok {
			row.Door = d
		}
		if len(e.Details) > 0 {
			b, _ := json.Marshal(e.Details)
			row.Details = cut(string(b), maxDetails)
		}
		v.Rows = append(v.Rows, row)
	}
	c.render(w, http.StatusOK, "audit.html", v)
}

// cut shortens s to at most n bytes, at the start of a character (never leaving
// part of one), and marks the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.TrimRight(s[:n], "\x00") + "…"
}

// disable is the kill switch: the engine refuses new calls of the skill, cancels
// those in flight and records the switch with the operator and door "console".
func (c *Console) disable(w http.ResponseWriter, r *http.Request, a actor) {
	name := r.PathValue("name")
	reason := r.PostForm.Get("reason")
	if reason == "" {
		reason = "kill switch in the console"
	}
	_, err := c.cfg.Engine.Disable(engine.WithDoor(r.Context(), Door), name, a.who, reason)
	if err != nil && engine.ReasonOf(err) != engine.ReasonCallsRunning {
		c.render(w, http.StatusBadRequest, "error.html", errorView{Title: "Not disabled", Message: engine.OneLine(err.Error())})
		return
	}
	// A skill disabled with calls not yet confirmed ended is disabled all the same;
	// the calls' own records tell when they end.
	c.back(w, r, name, "disabled")
}

func (c *Console) enable(w http.ResponseWriter, r *http.Request, a actor) {
	name := r.PathValue("name")
	if err := c.cfg.Engine.Enable(engine.WithDoor(r.Context(), Door), name, a.who); err != nil {
		c.render(w, http.StatusBadRequest, "error.html", errorView{Title: "Not enabled", Message: engine.OneLine(err.Error())})
		return
	}
	c.back(w, r, name, "enabled")
}

// back sends the browser to the page it acted from (the overview, or the skill's page)
// with the outcome.
func (c *Console) back(w http.ResponseWriter, r *http.Request, name, done string) {
	to := "/"
	if r.PostForm.Get("from") == "skill" {
		to = "/skills/" + name
	}
	http.Redirect(w, r, fmt.Sprintf("%s?done=%s&skill=%s", to, done, url.QueryEscape(name)), http.StatusSeeOther)
}

// decide is an approver's answer to one pending request, through the engine: it runs
// only if the request is still the one shown (its digest), the operator is one of its
// approvers and not its caller. A denial needs a reason, which its caller is shown.
func (c *Console) decide(allow bool) func(w http.ResponseWriter, r *http.Request, a actor) {
	return func(w http.ResponseWriter, r *http.Request, a actor) {
		d := engine.Decision{ID: r.PathValue("id"), By: a.who, Allow: allow,
			Reason: r.PostForm.Get("reason"), Digest: r.PostForm.Get("digest")}
		if d.Digest == "" {
			c.render(w, http.StatusBadRequest, "error.html", errorView{Title: "Not decided",
				Message: "the form does not say which request it decides (its digest): reload the page"})
			return
		}
		if err := c.cfg.Engine.Decide(engine.WithDoor(r.Context(), Door), d); err != nil {
			status := http.StatusBadRequest
			if engine.ReasonOf(err) == engine.ReasonNotApprover {
				status = http.StatusForbidden
			}
			c.render(w, status, "error.html", errorView{Title: "Not decided", Message: engine.OneLine(err.Error())})
			return
		}
		done := "allowed"
		if !allow {
			done = "denied"
		}
		http.Redirect(w, r, "/?done="+done+"&skill="+url.QueryEscape(r.PostForm.Get("skill")), http.StatusSeeOther)
	}
}
