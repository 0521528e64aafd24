package issuing

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
)

// Subjects are written as Mastio writes its own: CN first, then O, one
// RDN each, as UTF8String (pyca/cryptography's default). Go's encoder
// would put O first and pick PrintableString, so a certificate the plugin
// issues would not compare equal, DN for DN, with one Mastio mints.

var (
	oidCommonName   = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidOrganization = asn1.ObjectIdentifier{2, 5, 4, 10}
)

// rawSubject is the DER of the name CN=cn, O=o in that order, each a
// UTF8String; an empty cn or o is left out. It returns nil for an empty
// name (the caller then leaves the subject empty, and Go marks the SAN
// critical as RFC 5280 requires).
func rawSubject(cn, o string) ([]byte, error) {
	var rdns pkix.RDNSequence
	for _, a := range []struct {
		oid   asn1.ObjectIdentifier
		value string
	}{{oidCommonName, cn}, {oidOrganization, o}} {
		if a.value == "" {
			continue
		}
		v, err := asn1.MarshalWithParams(a.value, "utf8")
		if err != nil {
			return nil, fmt.Errorf("encoding the subject: %w", err)
		}
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: a.oid, Value: asn1.RawValue{FullBytes: v}}})
	}
	if len(rdns) == 0 {
		return nil, nil
	}
	der, err := asn1.Marshal(rdns)
	if err != nil {
		return nil, fmt.Errorf("encoding the subject: %w", err)
	}
	return der, nil
}
