package issuing

import (
	"net/url"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// URIPattern is a compiled uri_san_pattern.
type URIPattern struct {
	trustDomain spiffeid.TrustDomain
	segments    []patternSegment
}

type patternSegment struct {
	any     bool     // "*": one segment of SPIFFE path characters
	options []string // literal, or the alternatives of {a|b|c}
}

// CompileURIPattern substitutes {{trust_domain}} and {{org_id}} and parses
// the pattern: spiffe://<trust domain>/<segment>/..., where a segment is a
// literal, "*" (any one segment) or "{a|b|c}" (one of the literals).
func CompileURIPattern(pattern, trustDomain, orgID string) (*URIPattern, error) {
	s := strings.NewReplacer("{{trust_domain}}", trustDomain, "{{org_id}}", orgID).Replace(pattern)
	if v := templateVar.FindString(s); v != "" {
		return nil, Inputf("uri_san_pattern: unknown placeholder %s; use {{trust_domain}} or {{org_id}}", v)
	}
	rest, ok := strings.CutPrefix(s, "spiffe://")
	if !ok {
		return nil, Inputf("uri_san_pattern %s must start with spiffe://", Quote(pattern))
	}
	parts := strings.Split(rest, "/")
	td, err := spiffeid.TrustDomainFromString(parts[0])
	if err != nil {
		return nil, Inputf("uri_san_pattern %s: trust domain is not valid: %v", Quote(pattern), err)
	}
	if len(parts) < 2 {
		return nil, Inputf("uri_san_pattern %s must have at least one path segment", Quote(pattern))
	}
	p := &URIPattern{trustDomain: td}
	for _, seg := range parts[1:] {
		switch {
		case seg == "*":
			p.segments = append(p.segments, patternSegment{any: true})
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			opts := strings.Split(seg[1:len(seg)-1], "|")
			for _, o := range opts {
				if err := spiffeid.ValidatePathSegment(o); err != nil {
					return nil, Inputf("uri_san_pattern %s: alternative %s is not a valid path segment: %v", Quote(pattern), Quote(o), err)
				}
			}
			p.segments = append(p.segments, patternSegment{options: opts})
		default:
			if err := spiffeid.ValidatePathSegment(seg); err != nil {
				return nil, Inputf("uri_san_pattern %s: segment %s is not valid (a literal, * or {a|b}): %v", Quote(pattern), Quote(seg), err)
			}
			p.segments = append(p.segments, patternSegment{options: []string{seg}})
		}
	}
	return p, nil
}

// Match checks u against the pattern and returns the value of the last "*"
// segment ("" when the pattern has none).
func (p *URIPattern) Match(u *url.URL) (string, error) {
	id, err := spiffeid.FromURI(u)
	if err != nil {
		return "", Inputf("URI SAN %s is not a valid SPIFFE ID: %v", Quote(u.String()), err)
	}
	if id.Path() == "" {
		return "", Inputf("URI SAN %q names a trust domain, not a workload: a path is required", u.String())
	}
	if id.TrustDomain() != p.trustDomain {
		return "", Inputf("URI SAN %q is in trust domain %q; this role allows only %q", u.String(), id.TrustDomain().Name(), p.trustDomain.Name())
	}
	segs := strings.Split(strings.TrimPrefix(id.Path(), "/"), "/")
	if len(segs) != len(p.segments) {
		return "", Inputf("URI SAN %q does not match the role's pattern %s", u.String(), p)
	}
	name := ""
	for i, ps := range p.segments {
		switch {
		case ps.any:
			name = segs[i]
		case !slices.Contains(ps.options, segs[i]):
			return "", Inputf("URI SAN %q does not match the role's pattern %s", u.String(), p)
		}
	}
	return name, nil
}

// Expand builds the SPIFFE ID whose single "*" segment is name. Patterns
// with alternatives or several "*" segments cannot be expanded from a name.
func (p *URIPattern) Expand(name string) (*url.URL, error) {
	if err := spiffeid.ValidatePathSegment(name); err != nil {
		return nil, Inputf("name %s is not a valid SPIFFE path segment: %v", Quote(name), err)
	}
	segs := make([]string, 0, len(p.segments))
	stars := 0
	for _, s := range p.segments {
		switch {
		case s.any:
			stars++
			segs = append(segs, name)
		case len(s.options) == 1:
			segs = append(segs, s.options[0])
		default:
			return nil, Inputf("the role's pattern %s has alternatives: pass spiffe_id instead of name", p)
		}
	}
	if stars != 1 {
		return nil, Inputf("the role's pattern %s does not have exactly one * segment: pass spiffe_id instead of name", p)
	}
	id, err := spiffeid.FromSegments(p.trustDomain, segs...)
	if err != nil {
		return nil, Inputf("name %s makes no valid SPIFFE ID: %v", Quote(name), err)
	}
	return id.URL(), nil
}

func (p *URIPattern) String() string {
	var sb strings.Builder
	sb.WriteString(p.trustDomain.IDString())
	for _, s := range p.segments {
		sb.WriteByte('/')
		switch {
		case s.any:
			sb.WriteByte('*')
		case len(s.options) == 1:
			sb.WriteString(s.options[0])
		default:
			sb.WriteString("{" + strings.Join(s.options, "|") + "}")
		}
	}
	return sb.String()
}
