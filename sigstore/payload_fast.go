package sigstore

import (
	"strconv"
)

// fastParsePayload is the single-pass fast path of ParsePayload. It
// recognises a narrow subset of JSON that covers every payload tally,
// containers/image and skopeo write, and returns ok only when the payload
// is in that subset and ParsePayload's full parse would accept it with the
// same result: one JSON object, optionally surrounded by JSON whitespace,
// holding exactly "critical" and "optional" once each; critical holding
// exactly "type" (the string SignatureType), "image" (an object holding
// only "docker-manifest-digest", a string) and "identity" (an object
// holding only "docker-reference", a string); optional holding at most
// "creator" (a string) and "timestamp" (an integer number). Every string is
// printable ASCII without escapes, so it decodes to itself, and keys
// compare as encoding/json's decoded keys do. Anything else, including
// every input ParsePayload rejects, gives ok == false, and ParsePayload
// then runs the full parser, which decides and words the error. Validate
// is still applied by the caller.
//
// Because every accepted input is valid JSON with no duplicate, unknown or
// missing key and no value of the wrong type, the strict parser accepts it
// too; and because its critical.type is SignatureType, the legacy form
// does not match it. FuzzFastPayload checks both claims.
func fastParsePayload(data []byte) (p Payload, ok bool) {
	s := payloadScanner{data: data}
	s.space()
	var gotCritical, gotOptional bool
	if !s.objectKeys(func(key string) bool {
		switch key {
		case "critical":
			if gotCritical {
				return false
			}
			gotCritical = true
			return s.critical(&p)
		case "optional":
			if gotOptional {
				return false
			}
			gotOptional = true
			return s.optional(&p)
		}
		return false
	}) {
		return Payload{}, false
	}
	s.space()
	if s.pos != len(s.data) || !gotCritical || !gotOptional {
		return Payload{}, false
	}
	return p, true
}

// payloadScanner reads the fast-path subset of JSON from data.
type payloadScanner struct {
	data []byte
	pos  int
}

// space skips JSON whitespace.
func (s *payloadScanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// consume skips whitespace and then c, reporting whether c was there.
func (s *payloadScanner) consume(c byte) bool {
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// peek skips whitespace and reports whether the next byte is c.
func (s *payloadScanner) peek(c byte) bool {
	s.space()
	return s.pos < len(s.data) && s.data[s.pos] == c
}

// str reads a string of printable ASCII without escapes.
func (s *payloadScanner) str() (string, bool) {
	if !s.consume('"') {
		return "", false
	}
	start := s.pos
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			v := string(s.data[start:s.pos])
			s.pos++
			return v, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", false
		}
		s.pos++
	}
	return "", false
}

// objectKeys reads an object, calling member for each key with the
// scanner positioned before the value's leading whitespace; member reads
// the value and reports whether it is acceptable.
func (s *payloadScanner) objectKeys(member func(key string) bool) bool {
	if !s.consume('{') {
		return false
	}
	if s.consume('}') {
		return true
	}
	for {
		key, ok := s.str()
		if !ok || !s.consume(':') || !member(key) {
			return false
		}
		if s.consume('}') {
			return true
		}
		if !s.consume(',') {
			return false
		}
	}
}

// critical reads the critical object into p.
func (s *payloadScanner) critical(p *Payload) bool {
	var gotType, gotImage, gotIdentity bool
	if !s.objectKeys(func(key string) bool {
		switch key {
		case "type":
			if gotType {
				return false
			}
			gotType = true
			typ, ok := s.str()
			return ok && typ == SignatureType
		case "image":
			if gotImage {
				return false
			}
			gotImage = true
			v, ok := s.single("docker-manifest-digest")
			p.Digest = v
			return ok
		case "identity":
			if gotIdentity {
				return false
			}
			gotIdentity = true
			v, ok := s.single("docker-reference")
			p.Reference = v
			return ok
		}
		return false
	}) {
		return false
	}
	return gotType && gotImage && gotIdentity
}

// single reads an object whose only member is name, a string.
func (s *payloadScanner) single(name string) (string, bool) {
	var v string
	got := false
	if !s.objectKeys(func(key string) bool {
		if key != name || got {
			return false
		}
		got = true
		var ok bool
		v, ok = s.str()
		return ok
	}) {
		return "", false
	}
	return v, got
}

// optional reads the optional object into p.
func (s *payloadScanner) optional(p *Payload) bool {
	var gotCreator, gotTimestamp bool
	return s.objectKeys(func(key string) bool {
		switch key {
		case "creator":
			if gotCreator {
				return false
			}
			gotCreator = true
			v, ok := s.str()
			p.Creator = v
			return ok
		case "timestamp":
			if gotTimestamp {
				return false
			}
			gotTimestamp = true
			t, ok := s.integer()
			p.Timestamp = t
			return ok
		}
		return false
	})
}

// integer reads a JSON number without fraction or exponent and converts it
// exactly as the full parser does: to float64 (encoding/json's
// strconv.ParseFloat), which must then be an integer within int64.
func (s *payloadScanner) integer() (int64, bool) {
	if s.peek('"') {
		return 0, false
	}
	start := s.pos
	if s.pos < len(s.data) && s.data[s.pos] == '-' {
		s.pos++
	}
	digits := s.pos
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
	}
	switch n := s.pos - digits; {
	case n == 0, n > 1 && s.data[digits] == '0':
		return 0, false // no digits, or a leading zero JSON forbids
	}
	if s.pos < len(s.data) {
		switch s.data[s.pos] {
		case '.', 'e', 'E':
			return 0, false // outside the fast path
		}
	}
	f, err := strconv.ParseFloat(string(s.data[start:s.pos]), 64)
	if err != nil || f < -(1<<63) || f >= 1<<63 || float64(int64(f)) != f {
		return 0, false
	}
	return int64(f), true
}
