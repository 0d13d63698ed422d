package sigstore

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSecretKeyList(t *testing.T) {
	t.Parallel()
	const (
		a  = "E0106E9228EB09351F6734C7ED8E3C9AEF5811B1"
		d  = "818F2612EAB0A96C3ADB4302539C77D04CC8607E"
		ds = "FE77E7ADCE451920F2679A646F611A79CC4DC8C0"
	)
	// gpg 2.2 --with-colons --fixed-list-mode --with-fingerprint
	// --with-subkey-fingerprint --list-secret-keys: alice, and dave with an
	// offline primary key ("#") and its signing subkey on a card.
	out := "sec:u:3072:1:ED8E3C9AEF5811B1:1795891097:::u:::scSC:::+:::23::0:\n" +
		"fpr:::::::::" + a + ":\n" +
		"grp:::::::::0123:\n" +
		"uid:u::::1795891097::AAAA::Alice::::::::::0:\n" +
		"sec:-:255:22:539C77D04CC8607E:1795891097:::-:::cSC:::#::ed25519:::0:\n" +
		"fpr:::::::::" + d + ":\n" +
		"ssb:-:255:22:6F611A79CC4DC8C0:1795891097::::::s:::D2760001240102010006012345670000::ed25519::\n" +
		"fpr:::::::::" + ds + ":\n"
	got, err := parseSecretKeyList([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []gpgSecretKey{
		{fingerprint: a, secretAvailable: map[string]bool{a: true}},
		{fingerprint: d, secretAvailable: map[string]bool{d: false, ds: true}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(gpgSecretKey{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	for name, bad := range map[string]string{
		"subkey first":    "ssb:-:255:22:X:1::::::s:::+::\n",
		"no fingerprint":  "sec:-:255:22:X:1:::-:::cSC:::+::\n",
		"empty fpr field": "sec:-:255:22:X:1:::-:::cSC:::+::\nfpr:::::::::\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if keys, err := parseSecretKeyList([]byte(bad)); err == nil {
				t.Errorf("parseSecretKeyList = %+v, want an error", keys)
			}
		})
	}
}
