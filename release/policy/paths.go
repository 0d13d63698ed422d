package policy

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/tally-sig/tally/sigstore"
)

// Class says which part of a signatures repository a path belongs to; each
// part has its own rules for what a commit may do to it.
type Class string

// The classes of ClassifyPath.
const (
	// ClassPolicy: tally.toml or the keyring it names. Changes need a
	// maintainer's signed commit and, when they widen trust, approvals.
	ClassPolicy Class = "policy"
	// ClassLookaside: below the namespace: signature files, only added.
	ClassLookaside Class = "lookaside"
	// ClassBuildRecord: builds/<release>/<FINGERPRINT>.txt, only grown by
	// its own maintainer.
	ClassBuildRecord Class = "build-record"
	// ClassRelease: releases/<release>/..., only added by a release commit.
	ClassRelease Class = "release"
	// ClassApproval: approvals/<id>/statement and approvals/<id>/<FINGERPRINT>.asc,
	// only added.
	ClassApproval Class = "approval"
	// ClassExtra: listed in the policy's extra_paths.
	ClassExtra Class = "extra"
	// ClassUnknown: anything else, which a commit may not touch.
	ClassUnknown Class = "unknown"
)

// StatementFile is the name of the approval statement in approvals/<id>/.
const StatementFile = "statement"

// PathInfo is what ClassifyPath learned about a path.
type PathInfo struct {
	// Class is the part of the repository the path is in.
	Class Class
	// Problem says why the path is malformed for its class ("" when it is
	// well formed). A path with a problem is never acceptable.
	Problem string
	// Location is the signature file (ClassLookaside without a problem).
	Location sigstore.Location
	// Name is the image name below the namespace (ClassLookaside).
	Name string
	// Release is the release version (ClassBuildRecord, ClassRelease).
	Release string
	// Fingerprint is the maintainer's primary fingerprint
	// (ClassBuildRecord, and ClassApproval for a signature).
	Fingerprint string
	// ApprovalID is the statement's SHA-256 in hex (ClassApproval).
	ApprovalID string
	// Statement is true for approvals/<id>/statement (ClassApproval).
	Statement bool
}

var (
	fingerprintPattern = regexp.MustCompile(`^[0-9A-F]{40}(?:[0-9A-F]{24})?$`)
	approvalIDPattern  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ClassifyPath says which part of a signatures repository governed by p the
// slash-separated path belongs to, and whether it is well formed there. It
// never fails: a path it does not know is ClassUnknown.
func ClassifyPath(p Policy, path string) PathInfo {
	if path == PolicyFile || path == p.Keyring {
		return PathInfo{Class: ClassPolicy}
	}
	top, rest, _ := strings.Cut(path, "/")
	switch top {
	case BuildsDir:
		return classifyBuildRecord(path, rest)
	case ReleasesDir:
		return classifyRelease(rest)
	case ApprovalsDir:
		return classifyApproval(rest)
	}
	if ns := p.Namespace; ns != "" && strings.HasPrefix(path, ns+"/") {
		info := PathInfo{Class: ClassLookaside}
		loc, err := sigstore.ParseLocation(path)
		if err != nil {
			info.Problem = err.Error()
			return info
		}
		info.Location = loc
		info.Name = strings.TrimPrefix(loc.Repository, ns+"/")
		if info.Name == loc.Repository || info.Name == "" {
			info.Problem = fmt.Sprintf("repository %s is not below the namespace %s", loc.Repository, ns)
		}
		return info
	}
	for _, e := range p.ExtraPaths.List() {
		if path == e || strings.HasSuffix(e, "/") && strings.HasPrefix(path, e) {
			return PathInfo{Class: ClassExtra}
		}
	}
	return PathInfo{Class: ClassUnknown}
}

func classifyBuildRecord(path, rest string) PathInfo {
	info := PathInfo{Class: ClassBuildRecord}
	parts := strings.Split(rest, "/")
	if len(parts) != 2 || !strings.HasSuffix(parts[1], ".txt") {
		info.Problem = "not a build record path: want builds/<release>/<FINGERPRINT>.txt"
		return info
	}
	if err := CheckReleaseName(parts[0]); err != nil {
		info.Problem = err.Error()
		return info
	}
	fpr := strings.TrimSuffix(parts[1], ".txt")
	if !fingerprintPattern.MatchString(fpr) {
		info.Problem = fmt.Sprintf("%q is not a primary key fingerprint in uppercase hex", fpr)
		return info
	}
	info.Release, info.Fingerprint = parts[0], fpr
	if BuildRecordPath(info.Release, fpr) != path {
		info.Problem = "not a build record path: want builds/<release>/<FINGERPRINT>.txt"
	}
	return info
}

func classifyRelease(rest string) PathInfo {
	info := PathInfo{Class: ClassRelease}
	version, file, ok := strings.Cut(rest, "/")
	if !ok || file == "" {
		info.Problem = "not a release manifest path: want releases/<release>/<file>"
		return info
	}
	if err := CheckReleaseName(version); err != nil {
		info.Problem = err.Error()
		return info
	}
	info.Release = version
	return info
}

func classifyApproval(rest string) PathInfo {
	info := PathInfo{Class: ClassApproval}
	id, file, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(file, "/") {
		info.Problem = "not an approval path: want approvals/<id>/statement or approvals/<id>/<FINGERPRINT>.asc"
		return info
	}
	if !approvalIDPattern.MatchString(id) {
		info.Problem = fmt.Sprintf("approval id %q is not 64 lowercase hex digits (the SHA-256 of the statement)", id)
		return info
	}
	info.ApprovalID = id
	if file == StatementFile {
		info.Statement = true
		return info
	}
	fpr, ok := strings.CutSuffix(file, ".asc")
	if !ok || !fingerprintPattern.MatchString(fpr) {
		info.Problem = fmt.Sprintf("%q is neither %q nor <FINGERPRINT>.asc", file, StatementFile)
		return info
	}
	info.Fingerprint = fpr
	return info
}
