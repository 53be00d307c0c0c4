module github.com/kubepim/kubepim

go 1.26
