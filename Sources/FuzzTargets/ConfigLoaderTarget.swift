import Foundation
import GatewayCore
import Synchronization

/// `config_loader`: the gateway configuration and its mapping table, read
/// from YAML as `check-config` and a start read it. The input is the
/// configuration file; it sits in the fixture directory, so the example's
/// relative paths (certs/, devices/*.yaml, mappings/*.yaml) find real
/// files. Errors are expected; a crash, a hang or a leak is a finding.
package enum ConfigLoaderTarget {
    /// Whether the configuration loaded; nil when the input was left out.
    @discardableResult
    package static func run(_ input: [UInt8]) -> Bool? {
        guard LoaderInput.isConfined(input) else { return nil }
        let fixture = FuzzFixture.shared
        return LoaderInput.oneAtATime.withLock { _ in
            guard let path = try? fixture.write("fuzz-gateway.yaml", input) else { return nil }
            return load(path)
        }
    }

    private static func load(_ path: String) -> Bool {
        do {
            let config = try ConfigLoader.load(path: path, environment: ["IOTGW_FUZZ": "value"], now: FuzzFixture.now)
            precondition(!config.gateway.name.isEmpty, "a loaded configuration without a gateway name")
            return true
        } catch {
            precondition(!error.issues.isEmpty, "a refused configuration without a reason")
            return false
        }
    }
}

/// `registry_loader`: a device registry file, as the gateway reads it at
/// start and at every reload. The input is the file (mode 0600).
package enum RegistryLoaderTarget {
    /// Whether the registry loaded; nil when the input could not be written.
    @discardableResult
    package static func run(_ input: [UInt8]) -> Bool? {
        let fixture = FuzzFixture.shared
        return LoaderInput.oneAtATime.withLock { _ in
            guard let path = try? fixture.write("fuzz-devices.yaml", input, mode: 0o600) else { return nil }
            return load(path)
        }
    }

    private static func load(_ path: String) -> Bool {
        do {
            let loaded = try RegistryLoader.load(DeviceSettings(files: [path]))
            // Every device loaded must be found again by its id.
            for device in loaded.registry.devices {
                precondition(loaded.registry.device(id: device.id) != nil, "device \(device.id) not found by id")
            }
            return true
        } catch {
            precondition(!error.issues.isEmpty, "a refused registry without a reason")
            return false
        }
    }
}

enum LoaderInput {
    /// Each loader target writes its input to one file of the fixture; the
    /// regression tests run in parallel, libFuzzer does not.
    static let oneAtATime = Mutex(())

    /// The loaders read whatever files a configuration names: that is the
    /// operator's call, not a finding. Inputs naming device files and the
    /// kernel's pseudo file systems (a read of /dev/zero never ends) are
    /// left out.
    static func isConfined(_ input: [UInt8]) -> Bool {
        for word in ["/dev/", "/proc/", "/sys/"] where contains(input, Array(word.utf8)) {
            return false
        }
        return true
    }

    private static func contains(_ bytes: [UInt8], _ word: [UInt8]) -> Bool {
        guard bytes.count >= word.count else { return false }
        for start in 0...(bytes.count - word.count) where bytes[start] == word[0] {
            if bytes[start..<(start + word.count)].elementsEqual(word) { return true }
        }
        return false
    }
}
