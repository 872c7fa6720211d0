package config

import (
	"bytes"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Addresses is php.fpm_socket: one PHP-FPM address (a TOML string) or
// several (an array of strings).
type Addresses []string

// UnmarshalTOML decodes a string or an array of strings.
func (a *Addresses) UnmarshalTOML(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && (data[0] == '"' || data[0] == '\'') {
		var v struct{ V string }
		if err := toml.Unmarshal(append([]byte("V = "), data...), &v); err != nil {
			return err
		}
		*a = Addresses{v.V}
		return nil
	}
	var v struct{ V []string }
	if err := toml.Unmarshal(append([]byte("V = "), data...), &v); err != nil {
		return errAddresses
	}
	*a = Addresses(v.V)
	return nil
}

type addressesError struct{}

func (addressesError) Error() string {
	return `fpm_socket: wrong type: want a PHP-FPM address (a string) or an array of them`
}

var errAddresses error = addressesError{}

// String joins the addresses with ", " (for messages and logs).
func (a Addresses) String() string { return strings.Join(a, ", ") }
