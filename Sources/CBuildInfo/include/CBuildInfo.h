#ifndef IOTGW_CBUILDINFO_H
#define IOTGW_CBUILDINFO_H

/// The commit the binary was built from: set by Package.swift from the
/// IOTGW_COMMIT environment variable (packaging/build-deb sets it), or
/// "unknown" for any other build. A function rather than a header macro, so
/// that only buildinfo.c sees the define and only it recompiles when the
/// commit changes.
const char *iotgw_build_commit(void);

#endif
