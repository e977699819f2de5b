package backup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// seal writes r compressed with zstd and encrypted with age to every
// recipient. age's payload is authenticated in 64 KiB chunks, so a
// changed, cut or swapped byte fails the decryption, not only the
// checksum.
func seal(w io.Writer, r io.Reader, to []age.Recipient) error {
	aw, err := age.Encrypt(w, to...)
	if err != nil {
		return err
	}
	zw, err := zstd.NewWriter(aw, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, r); err != nil {
		zw.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return aw.Close()
}

// unseal copies what seal wrote, decrypted and decompressed, to w.
func unseal(w io.Writer, r io.Reader, ids []age.Identity) error {
	ar, err := age.Decrypt(r, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return errors.New("the backup key does not open it (encrypted to other recipients)")
		}
		return fmt.Errorf("decrypt: %w", err)
	}
	zr, err := zstd.NewReader(ar, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	defer zr.Close()
	if _, err := io.Copy(w, zr); err != nil {
		return fmt.Errorf("decrypt and decompress: %w", err)
	}
	return nil
}

// Key is the backup key: the age identity backups are encrypted to and
// drilled with, and any more recipients they are also encrypted to.
type Key struct {
	Identity   *age.X25519Identity
	Recipients []age.Recipient // the identity's own first
}

// LoadKey reads the identity file (which only its owner may read) and
// parses the extra recipients.
func LoadKey(path string, extra []string) (Key, error) {
	var k Key
	fi, err := os.Stat(path)
	if err != nil {
		return k, fmt.Errorf("backup key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return k, fmt.Errorf("backup key %s: readable by others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return k, fmt.Errorf("backup key: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k.Identity != nil {
			return k, fmt.Errorf("backup key %s: more than one identity", path)
		}
		if k.Identity, err = age.ParseX25519Identity(line); err != nil {
			// never repeat the line: it is the secret key
			return k, fmt.Errorf("backup key %s: not an age identity (AGE-SECRET-KEY-1...)", path)
		}
	}
	if k.Identity == nil {
		return k, fmt.Errorf("backup key %s: no identity in it", path)
	}
	k.Recipients = append(k.Recipients, k.Identity.Recipient())
	for _, s := range extra {
		r, err := age.ParseX25519Recipient(s)
		if err != nil {
			return k, fmt.Errorf("backup-recipients: %q: %w", s, err)
		}
		k.Recipients = append(k.Recipients, r)
	}
	return k, nil
}

// KeyGen writes a new identity to path (which must not exist), readable
// by its owner only, and returns its recipient.
func KeyGen(path string, now time.Time) (string, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("backup key: %w", err)
	}
	fmt.Fprintf(f, "# Fjord backup key, created %s\n# public key: %s\n%s\n", now.UTC().Format(time.RFC3339), id.Recipient(), id)
	if err := (syncCloser{f}).Close(); err != nil {
		return "", err
	}
	return id.Recipient().String(), nil
}
