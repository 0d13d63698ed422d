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

	"github.com/tally-sig/tally/release/policy"
)

// statementHeader opens every approval statement; the version changes if the
// meaning of a statement ever does.
const statementHeader = "tally trust policy change v1"

// maxStatementSize bounds an approval statement.
const maxStatementSize = 64 << 10

// Statement is what maintainers sign to approve a change of the trust
// policy: the exact files before and after (by SHA-256), and a readable
// summary of what changes. It is stored as approvals/<ID>/statement, and
// each maintainer's approval as approvals/<ID>/<FINGERPRINT>.asc, an
// ASCII-armored detached OpenPGP signature of it
// (gpg --verify <FINGERPRINT>.asc statement checks one by hand).
type Statement struct {
	// From and To name the policy files before and after:
	// "tally.toml sha256:<hex> <keyring> sha256:<hex>".
	From, To string
	// Changes summarise the change, one line each, in a fixed order.
	Changes []string
}

var (
	stateLinePattern  = regexp.MustCompile(`^tally\.toml sha256:[0-9a-f]{64} [^ /]+ sha256:[0-9a-f]{64}$`)
	changeLinePattern = regexp.MustCompile(`^[a-z][a-z_-]* [ -~]+$`)
)

// Marshal encodes the statement: the header, "from …", "to …", then one
// line per change, each ending in a newline.
func (s Statement) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(statementHeader + "\n")
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
// back byte for byte.
func ParseStatement(data []byte) (Statement, error) {
	if len(data) > maxStatementSize {
		return Statement{}, fmt.Errorf("statement is larger than %d bytes", maxStatementSize)
	}
	if !utf8.Valid(data) || !bytes.HasSuffix(data, []byte("\n")) {
		return Statement{}, errors.New("statement is not lines of text ending in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) < 3 || lines[0] != statementHeader {
		return Statement{}, fmt.Errorf("statement does not start with %q, from and to lines", statementHeader)
	}
	var s Statement
	var ok bool
	if s.From, ok = strings.CutPrefix(lines[1], "from "); !ok || !stateLinePattern.MatchString(s.From) {
		return Statement{}, errors.New("statement line 2 is not \"from tally.toml sha256:<hex> <keyring> sha256:<hex>\"")
	}
	if s.To, ok = strings.CutPrefix(lines[2], "to "); !ok || !stateLinePattern.MatchString(s.To) {
		return Statement{}, errors.New("statement line 3 is not \"to tally.toml sha256:<hex> <keyring> sha256:<hex>\"")
	}
	if s.From == s.To {
		return Statement{}, errors.New("statement changes nothing: from and to are the same")
	}
	for i, l := range lines[3:] {
		if !changeLinePattern.MatchString(l) {
			return Statement{}, fmt.Errorf("statement line %d is not a change line (printable ASCII, starting with a lower-case word)", i+4)
		}
		s.Changes = append(s.Changes, l)
	}
	return s, nil
}

// changeStatement describes the change from one trust policy to another,
// and says which of its changes widen trust and so need approvals (nil when
// none does: raising the threshold, or refreshing keys without dropping a
// revocation).
func changeStatement(from, to *policyState) (st Statement, needApproval []string) {
	st = Statement{From: from.digest(), To: to.digest()}
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
		if droppedRevocation(oldE, newE) {
			st.Changes = append(st.Changes, "drop-revocation "+k.Fingerprint)
			needApproval = append(needApproval, "drops a revocation of key "+k.Fingerprint)
		} else if !bytes.Equal(serialize(oldE), serialize(newE)) {
			st.Changes = append(st.Changes, "update-key "+k.Fingerprint)
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
