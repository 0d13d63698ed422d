package sigstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// SignatureType is the critical.type of every simple-signing payload.
const SignatureType = "atomic container signature"

// legacySignatureType is the critical.type of StageX's pre-2025 payloads.
const legacySignatureType = "pgp container image signature"

// ErrInvalidPayload is wrapped by every error of ParsePayload and
// Payload.Marshal for a payload that clients (or tally) reject.
var ErrInvalidPayload = errors.New("invalid signature payload")

// ErrLegacyPayload is wrapped by the error ParsePayload returns for StageX's
// pre-2025 payload form (a top-level JSON array with the type
// "pgp container image signature"). Clients reject such payloads; tally
// reports them and never counts them. The error is a *LegacyPayloadError.
var ErrLegacyPayload = errors.New("legacy StageX signature payload")

// LegacyPayloadError describes a pre-2025 StageX payload. Its fields are what
// the payload claimed, for reporting only; they may be empty.
type LegacyPayloadError struct {
	Reference string // the docker-reference it claimed, usually without a tag
	Digest    string // the digest it claimed, with "sha256:" added when it was bare hex
}

// Error implements error.
func (e *LegacyPayloadError) Error() string {
	msg := ErrLegacyPayload.Error() + " (array form, type \"" + legacySignatureType + "\")"
	if e.Reference != "" || e.Digest != "" {
		msg += fmt.Sprintf(" for %q at %q", e.Reference, e.Digest)
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrLegacyPayload) true.
func (e *LegacyPayloadError) Unwrap() error { return ErrLegacyPayload }

// Payload is the content of a containers "simple signing" signature: the
// claim that the image manifest Digest is the image Reference.
type Payload struct {
	// Reference is the signed docker reference, "<repository>:<tag>",
	// for example "stagex/core-gcc:14.2.0".
	Reference string `json:"reference"`
	// Digest is the signed manifest digest, "sha256:" + 64 lowercase hex.
	Digest string `json:"digest"`
	// Creator is optional.creator; "" means absent.
	Creator string `json:"creator,omitempty"`
	// Timestamp is optional.timestamp in Unix seconds; 0 means absent.
	Timestamp int64 `json:"timestamp,omitempty"`
}

// Validate reports whether p can be signed and counted: Digest is a sha256
// digest in lowercase hex and Reference a valid docker reference with a tag
// and without a digest. Errors wrap ErrInvalidPayload.
func (p Payload) Validate() error {
	if err := validateDigest(p.Digest); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPayload, err)
	}
	if _, err := parseSignedReference(p.Reference); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPayload, err)
	}
	return nil
}

var sha256DigestRegexp = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// isSHA256Digest reports whether d matches sha256DigestRegexp, "sha256:"
// followed by 64 lowercase hex digits, without the regexp machinery.
func isSHA256Digest(d string) bool {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func validateDigest(d string) error {
	if !isSHA256Digest(d) {
		return fmt.Errorf("docker-manifest-digest %q is not \"sha256:\" followed by 64 lowercase hex digits", d)
	}
	return nil
}

// parseSignedReference parses the docker-reference of a payload: a valid
// docker reference that carries a tag and no digest.
func parseSignedReference(s string) (dockerReference, error) {
	if ref, ok := signedRefCache.get(s); ok {
		return ref, nil
	}
	ref, err := parseDockerReference(s)
	if err != nil {
		return dockerReference{}, fmt.Errorf("docker-reference: %v", err)
	}
	if ref.digest != "" {
		return dockerReference{}, fmt.Errorf("docker-reference %q contains a digest; tally signs tags", s)
	}
	if ref.tag == "" {
		return dockerReference{}, fmt.Errorf("docker-reference %q has no tag", s)
	}
	signedRefCache.add(s, ref)
	return ref, nil
}

// Marshal validates p and returns its payload as containers/image writes it:
// compact JSON with sorted keys, an "optional" object that holds creator and
// timestamp only when they are set.
func (p Payload) Marshal() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("marshaling payload: %w", err)
	}
	optional := map[string]any{}
	if p.Creator != "" {
		optional["creator"] = p.Creator
	}
	if p.Timestamp != 0 {
		optional["timestamp"] = p.Timestamp
	}
	// Maps marshal with sorted keys, exactly like containers/image's
	// untrustedSignature.MarshalJSON.
	doc := map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": p.Reference},
			"image":    map[string]string{"docker-manifest-digest": p.Digest},
			"type":     SignatureType,
		},
		"optional": optional,
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("marshaling payload: %w", err)
	}
	return b, nil
}

// ParsePayload parses a simple-signing payload exactly as strictly as
// containers/image does (duplicate keys, unknown or missing members of
// critical, image and identity, wrong types and trailing data are errors;
// unknown members of optional are ignored), then applies Validate.
// The pre-2025 StageX form gives a *LegacyPayloadError. Every error wraps
// ErrInvalidPayload or ErrLegacyPayload.
func ParsePayload(data []byte) (Payload, error) {
	// The fast path accepts only payloads the full parse below accepts
	// with the same result; everything else, and every error, is the full
	// parse's.
	if p, ok := fastParsePayload(data); ok {
		if err := p.Validate(); err == nil {
			return p, nil
		}
	}
	return parsePayloadFull(data)
}

// parsePayloadFull is ParsePayload without the fast path: the legacy form,
// then the strict parse, then Validate.
func parsePayloadFull(data []byte) (Payload, error) {
	if legacy, ok := parseLegacyPayload(data); ok {
		return Payload{}, legacy
	}
	p, err := parsePayloadJSON(data)
	if err != nil {
		return Payload{}, fmt.Errorf("parsing payload: %w: %v", ErrInvalidPayload, err)
	}
	if err := p.Validate(); err != nil {
		return Payload{}, fmt.Errorf("parsing payload: %w", err)
	}
	return p, nil
}

// parsePayloadJSON replicates containers/image's
// untrustedSignature.strictUnmarshalJSON, reached through json.Unmarshal.
func parsePayloadJSON(data []byte) (Payload, error) {
	// json.Unmarshal checks that the whole input is one valid JSON value
	// before it calls the UnmarshalJSON method.
	if !json.Valid(data) {
		return Payload{}, errors.New("not valid JSON")
	}
	var critical, optional json.RawMessage
	if err := paranoidExactFields(data, map[string]any{
		"critical": &critical,
		"optional": &optional,
	}); err != nil {
		return Payload{}, err
	}

	var p Payload
	var creator string
	var timestamp float64
	gotCreator, gotTimestamp := false, false
	if err := paranoidObject(optional, func(key string) any {
		switch key {
		case "creator":
			gotCreator = true
			return &creator
		case "timestamp":
			gotTimestamp = true
			return &timestamp
		default:
			var ignore any
			return &ignore
		}
	}); err != nil {
		return Payload{}, fmt.Errorf("optional: %v", err)
	}
	if gotCreator {
		p.Creator = creator
	}
	if gotTimestamp {
		// containers/image converts the float64 to int64 and back; values
		// outside int64 fail that check on amd64, so refuse them here on
		// every platform.
		if timestamp < -(1<<63) || timestamp >= 1<<63 || float64(int64(timestamp)) != timestamp {
			return Payload{}, fmt.Errorf("optional.timestamp %v is not an integer", timestamp)
		}
		p.Timestamp = int64(timestamp)
	}

	var typ string
	var image, identity json.RawMessage
	if err := paranoidExactFields(critical, map[string]any{
		"type":     &typ,
		"image":    &image,
		"identity": &identity,
	}); err != nil {
		return Payload{}, fmt.Errorf("critical: %v", err)
	}
	if typ != SignatureType {
		return Payload{}, fmt.Errorf("critical.type is %q, not %q", typ, SignatureType)
	}
	if err := paranoidExactFields(image, map[string]any{
		"docker-manifest-digest": &p.Digest,
	}); err != nil {
		return Payload{}, fmt.Errorf("critical.image: %v", err)
	}
	if err := paranoidExactFields(identity, map[string]any{
		"docker-reference": &p.Reference,
	}); err != nil {
		return Payload{}, fmt.Errorf("critical.identity: %v", err)
	}
	return p, nil
}

// paranoidObject decodes data as one JSON object, failing on duplicate keys,
// keys for which resolve returns nil, values that do not decode into the
// pointer resolve returns, and anything after the object. It replicates
// containers/image's internal.ParanoidUnmarshalJSONObject.
func paranoidObject(data []byte, resolve func(key string) any) error {
	seen := map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(data))
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if t != json.Delim('{') {
		return fmt.Errorf("JSON object expected, got %s", describeToken(t))
	}
	for {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		if t == json.Delim('}') {
			break
		}
		key, ok := t.(string)
		if !ok {
			return fmt.Errorf("key string expected, got %s", describeToken(t))
		}
		if seen[key] {
			return fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		ptr := resolve(key)
		if ptr == nil {
			return fmt.Errorf("unknown key %q", key)
		}
		if err := dec.Decode(ptr); err != nil {
			return fmt.Errorf("key %q: %v", key, err)
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after JSON object")
	}
	return nil
}

// paranoidExactFields is paranoidObject where every key of fields must be
// present, and no other key is accepted.
func paranoidExactFields(data []byte, fields map[string]any) error {
	seen := map[string]bool{}
	if err := paranoidObject(data, func(key string) any {
		if ptr, ok := fields[key]; ok {
			seen[key] = true
			return ptr
		}
		return nil
	}); err != nil {
		return err
	}
	for _, key := range slices.Sorted(maps.Keys(fields)) {
		if !seen[key] {
			return fmt.Errorf("key %q missing", key)
		}
	}
	return nil
}

func describeToken(t json.Token) string {
	switch v := t.(type) {
	case nil:
		return "null"
	case json.Delim:
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", t)
}

// legacyPayload is the shape of one element of a pre-2025 StageX payload.
type legacyPayload struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
}

var bareHexRegexp = regexp.MustCompile(`^[0-9a-f]{64}$`)

// parseLegacyPayload recognises the pre-2025 StageX forms: a JSON array of
// payload objects, or any payload whose critical.type is the legacy type.
func parseLegacyPayload(data []byte) (*LegacyPayloadError, bool) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	var candidates []legacyPayload
	if strings.HasPrefix(string(trimmed), "[") {
		if err := json.Unmarshal(trimmed, &candidates); err != nil {
			return nil, false
		}
	} else {
		var one legacyPayload
		if err := json.Unmarshal(trimmed, &one); err != nil {
			return nil, false
		}
		candidates = []legacyPayload{one}
	}
	if len(candidates) == 0 || candidates[0].Critical.Type != legacySignatureType {
		return nil, false
	}
	c := candidates[0].Critical
	digest := c.Image.DockerManifestDigest
	if bareHexRegexp.MatchString(digest) {
		digest = "sha256:" + digest
	}
	return &LegacyPayloadError{Reference: c.Identity.DockerReference, Digest: digest}, true
}
