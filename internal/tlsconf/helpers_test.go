package tlsconf_test

import (
	"os"
	"path/filepath"
)

func renameOver(dir, name string) error {
	return os.Rename(filepath.Join(dir, name+".tmp"), filepath.Join(dir, name))
}

func writeKey(dir string, pem []byte) error {
	tmp := filepath.Join(dir, "key.pem.tmp")
	if err := os.WriteFile(tmp, pem, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "key.pem"))
}
