module crun-rs.example/crun

go 1.19
