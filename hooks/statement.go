package hooks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// statementHeader opens every approval statement; the version changes when
// the meaning of a statement does. Version 1 named only the policy files
// before and after, so its approvals could be replayed once the policy came
// back to the same bytes; tally still reads it (to show old history) but
// never counts it. Version 2 also names the repository and the commit
// holding the policy it changes, so that it authorises one transition.
const (
	statementHeaderV1 = "tally trust policy change v1"
	statementHeader   = "tally trust policy change v2"
)

// maxStatementSize bounds an approval statement.
const maxStatementSize = 64 << 10

// Statement is what maintainers sign to approve a change of the trust
// policy: the repository, the commit whose tree holds the policy the change
// starts from, the exact files before and after (by SHA-256), and a readable
// summary of what changes. It is stored as approvals/<ID>/statement, and
// each maintainer's approval as approvals/<ID>/<FINGERPRINT>.asc, an
// ASCII-armored detached OpenPGP signature of it
// (gpg --verify <FINGERPRINT>.asc statement checks one by hand).
//
// A statement approves the change from From to To made on top of a commit P
// only when Base is P or an ancestor of P and every commit from Base to P
// holds the From policy: once the policy has changed after Base, the
// statement is spent, even if a later policy has From's bytes again.
type Statement struct {
	// Version is 2 for what tally writes; 1 for statements of older
	// versions of tally, read for history and never counted.
	Version int
	// Repository is the namespace of the repository (version 2).
	Repository string
	// Base is the id of the commit holding the From policy (version 2).
	Base string
	// From and To name the policy files before and after:
	// "tally.toml sha256:<hex> <keyring> sha256:<hex>".
	From, To string
	// Changes summarise the change, one line each, in a fixed order.
	Changes []string
}

var (
	stateLinePattern  = regexp.MustCompile(`^tally\.toml sha256:[0-9a-f]{64} [^ /]+ sha256:[0-9a-f]{64}$`)
	changeLinePattern = regexp.MustCompile(`^[a-z][a-z_-]* [ -~]+$`)
	commitPattern     = regexp.MustCompile(`^[0-9a-f]{40}$`)
	namespacePattern  = regexp.MustCompile(`^[!-~]+$`)
)

// Marshal encodes the statement: the header, (version 2) "repository …"
// and "base …", "from …", "to …", then one line per change, each ending in
// a newline.
func (s Statement) Marshal() []byte {
	var b bytes.Buffer
	if s.Version == 1 {
		b.WriteString(statementHeaderV1 + "\n")
	} else {
		b.WriteString(statementHeader + "\n")
		b.WriteString("repository " + s.Repository + "\n")
		b.WriteString("base " + s.Base + "\n")
	}
	b.WriteString("from " + s.From + "\n")
	b.WriteString("to " + s.To + "\n")
	for _, c := range s.Changes {
		b.WriteString(c + "\n")
	}
	return b.Bytes()
}

// ID is the statement's name in approvals/: the hex SHA-256 of Marshal.
func (s Statement) ID() string {
	h := sha256.Sum256(s.Marshal())
	return hex.EncodeToString(h[:])
}

// ParseStatement reads a statement strictly: what it accepts, Marshal gives
// back byte for byte. It reads both versions.
func ParseStatement(data []byte) (Statement, error) {
	if len(data) > maxStatementSize {
		return Statement{}, fmt.Errorf("statement is larger than %d bytes", maxStatementSize)
	}
	if !utf8.Valid(data) || !bytes.HasSuffix(data, []byte("\n")) {
		return Statement{}, errors.New("statement is not lines of text ending in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var s Statement
	switch {
	case len(lines) >= 5 && lines[0] == statementHeader:
		s.Version = 2
		var ok bool
		if s.Repository, ok = strings.CutPrefix(lines[1], "repository "); !ok || !namespacePattern.MatchString(s.Repository) {
			return Statement{}, errors.New("statement line 2 is not \"repository <namespace>\"")
		}
		if s.Base, ok = strings.CutPrefix(lines[2], "base "); !ok || !commitPattern.MatchString(s.Base) {
			return Statement{}, errors.New("statement line 3 is not \"base <commit id>\"")
		}
		lines = lines[2:]
	case len(lines) >= 3 && lines[0] == statementHeaderV1:
		s.Version = 1
	default:
		return Statement{}, fmt.Errorf("statement does not start with %q (or %q), then from and to lines", statementHeader, statementHeaderV1)
	}
	skip := 0
	if s.Version == 2 {
		skip = 2
	}
	var ok bool
	if s.From, ok = strings.CutPrefix(lines[1], "from "); !ok || !stateLinePattern.MatchString(s.From) {
		return Statement{}, fmt.Errorf("statement line %d is not \"from tally.toml sha256:<hex> <keyring> sha256:<hex>\"", 2+skip)
	}
	if s.To, ok = strings.CutPrefix(lines[2], "to "); !ok || !stateLinePattern.MatchString(s.To) {
		return Statement{}, fmt.Errorf("statement line %d is not \"to tally.toml sha256:<hex> <keyring> sha256:<hex>\"", 3+skip)
	}
	if s.From == s.To {
		return Statement{}, errors.New("statement changes nothing: from and to are the same")
	}
	for i, l := range lines[3:] {
		if !changeLinePattern.MatchString(l) {
			return Statement{}, fmt.Errorf("statement line %d is not a change line (printable ASCII, starting with a lower-case word)", i+4+skip)
		}
		s.Changes = append(s.Changes, l)
	}
	return s, nil
}

// changeStatement describes the change from one trust policy to another,
// on top of the commit base, and says which of its changes need approvals
// (nil when none does: raising the threshold, or a key update that only
// adds what the key's own holder made, see sigstore.KeyUpdate).
func changeStatement(from, to *policyState, base plumbing.Hash) (st Statement, needApproval []string) {
	st = Statement{Version: 2, Repository: from.policy.Namespace, Base: base.String(), From: from.digest(), To: to.digest()}
	field := func(name, a, b string) {
		if a != b {
			line := fmt.Sprintf("%s %s -> %s", name, strconv.QuoteToASCII(a), strconv.QuoteToASCII(b))
			st.Changes = append(st.Changes, line)
			needApproval = append(needApproval, "changes "+name)
		}
	}
	fp, tp := from.policy, to.policy
	field("namespace", fp.Namespace, tp.Namespace)
	field("identity_prefix", fp.IdentityPrefix, tp.IdentityPrefix)
	field("keyring", fp.Keyring, tp.Keyring)
	field("protected_refs", strings.Join(fp.ProtectedRefs.List(), " "), strings.Join(tp.ProtectedRefs.List(), " "))
	field("extra_paths", strings.Join(fp.ExtraPaths.List(), " "), strings.Join(tp.ExtraPaths.List(), " "))
	if fp.Threshold != tp.Threshold {
		st.Changes = append(st.Changes, fmt.Sprintf("threshold %d -> %d", fp.Threshold, tp.Threshold))
		if tp.Threshold < fp.Threshold {
			needApproval = append(needApproval, fmt.Sprintf("lowers the threshold from %d to %d", fp.Threshold, tp.Threshold))
		}
	}
	for _, k := range to.keys.Keys() {
		if _, ok := from.keys.Key(k.Fingerprint); !ok {
			st.Changes = append(st.Changes, fmt.Sprintf("add-key %s %s", k.Fingerprint, strconv.QuoteToASCII(k.Name)))
			needApproval = append(needApproval, "adds key "+k.Fingerprint)
		}
	}
	for _, k := range from.keys.Keys() {
		if _, ok := to.keys.Key(k.Fingerprint); !ok {
			st.Changes = append(st.Changes, fmt.Sprintf("remove-key %s %s", k.Fingerprint, strconv.QuoteToASCII(k.Name)))
			needApproval = append(needApproval, "removes key "+k.Fingerprint)
		}
	}
	for _, k := range from.keys.Keys() {
		oldE, _ := from.keys.Entity(k.Fingerprint)
		newE, ok := to.keys.Entity(k.Fingerprint)
		if !ok {
			continue
		}
		switch {
		case droppedRevocation(oldE, newE):
			st.Changes = append(st.Changes, "drop-revocation "+k.Fingerprint)
			needApproval = append(needApproval, "drops a revocation of key "+k.Fingerprint)
		case bytes.Equal(serialize(oldE), serialize(newE)):
		default:
			// Free only when it adds what the key's own holder made.
			if what := sigstore.KeyUpdate(oldE, newE); len(what) > 0 {
				st.Changes = append(st.Changes, "change-key "+k.Fingerprint)
				needApproval = append(needApproval, fmt.Sprintf("changes key %s beyond what its holder adds alone (%s)", k.Fingerprint, shortList(what, 2)))
			} else {
				st.Changes = append(st.Changes, "update-key "+k.Fingerprint)
			}
		}
	}
	return st, needApproval
}

// droppedRevocation reports whether newE lacks a revocation that oldE has,
// of its primary key or of a subkey: a revoked key coming back to life.
func droppedRevocation(oldE, newE *openpgp.Entity) bool {
	type rev struct {
		unix   int64
		reason string
	}
	key := func(list []*packet.Signature) []rev {
		out := make([]rev, 0, len(list))
		for _, s := range list {
			r := ""
			if s.RevocationReason != nil {
				r = strconv.Itoa(int(*s.RevocationReason))
			}
			out = append(out, rev{s.CreationTime.Unix(), r})
		}
		return out
	}
	covers := func(newList, oldList []*packet.Signature) bool {
		have := key(newList)
		for _, r := range key(oldList) {
			if !slices.Contains(have, r) {
				return false
			}
		}
		return true
	}
	if !covers(newE.Revocations, oldE.Revocations) {
		return true
	}
	for _, os := range oldE.Subkeys {
		if len(os.Revocations) == 0 {
			continue
		}
		found := false
		for _, ns := range newE.Subkeys {
			if bytes.Equal(ns.PublicKey.Fingerprint, os.PublicKey.Fingerprint) && covers(ns.Revocations, os.Revocations) {
				found = true
				break
			}
		}
		if !found {
			return true
		}
	}
	return false
}

func serialize(e *openpgp.Entity) []byte {
	var b bytes.Buffer
	_ = e.Serialize(&b)
	return b.Bytes()
}

// approvalPath returns where fpr's approval of the statement with this id lives.
func approvalPath(id, fpr string) string {
	return policy.ApprovalsDir + "/" + id + "/" + fpr + ".asc"
}

// statementPath returns where the statement with this id lives.
func statementPath(id string) string {
	return policy.ApprovalsDir + "/" + id + "/" + policy.StatementFile
}
