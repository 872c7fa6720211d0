module github.com/fe-php/fe-php

go 1.26.8

require (
	github.com/pelletier/go-toml/v2 v2.4.3
	golang.org/x/sys v0.50.0
)

require github.com/sony/gobreaker/v2 v2.4.0 // indirect
