package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"fjord/internal/audit"
)

// AuditKeygen runs `fjord audit keygen FILE`: a new checkpoint signing key,
// written for its owner only; it prints the public key.
func AuditKeygen(args []string, stdout, stderr io.Writer) error {
	_, pos, err := parse("audit keygen", args, stderr, nil)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: fjord audit keygen FILE")
	}
	pub, err := audit.KeyFile(pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "audit key written to %s (keep it secret; set audit-key to it)\npublic key: %s\n", pos[0], hex.EncodeToString(pub))
	return nil
}

// AuditVerify runs `fjord audit verify`: the whole chain and every
// checkpoint; a break names the first bad entry and fails the command.
func AuditVerify(args []string, stdout, stderr io.Writer) error {
	cfg, _, err := parse("audit verify", args, stderr, nil)
	if err != nil {
		return err
	}
	var pub ed25519.PublicKey
	if cfg.AuditKey != "" {
		key, err := audit.LoadKey(cfg.AuditKey)
		if err != nil {
			return err
		}
		pub = key.Public().(ed25519.PublicKey)
	} else {
		fmt.Fprintln(stderr, "no audit-key set: checkpoint signatures are not checked")
	}
	var r audit.Report
	err = withEngine(cfg, func(c *control) error {
		return c.do("GET", "/audit/verify", nil, &r)
	}, func(e *engine) error {
		st, ok := e.st.Accounts.(audit.Store)
		if !ok {
			return errors.New("this account store keeps no audit log")
		}
		r, err = audit.Verify(context.Background(), st, pub)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "audit log intact: %d entries, %d checkpoints, signed up to entry %d\n", r.Entries, r.Checkpoints, r.LastSigned)
	return nil
}
