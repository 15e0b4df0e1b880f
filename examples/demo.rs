//! Prints the schemas scimkit serves. Replaced by the full example server as it lands.

fn main() {
    let registry = scimkit::SchemaRegistry::default();
    for rt in registry.resource_types() {
        println!("{} at {} ({})", rt.name(), rt.endpoint(), rt.core().id);
    }
}
