module github.com/vigilml/vigil

go 1.26
