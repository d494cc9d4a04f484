fn main() {
    let args: Vec<String> = std::env::args().collect();
    let remote = spfs_remote::open(&spfs_remote::RemoteAddress {
        name: "origin".into(),
        address: args[1].clone(),
    })
    .unwrap();
    let local =
        spfs_remote::LocalStore::local(spfs_repo::FsRepository::open_or_create(&args[2]).unwrap());
    let p = spfs_remote::Progress::new();
    let s = spfs_remote::Syncer::new(
        &*remote,
        &local,
        spfs_remote::SyncOptions {
            payloads: args[4] == "1",
            concurrency: 4,
        },
        &p,
    );
    let r = s.sync_spec(&args[3]);
    println!("{r:?} {:?}", p.snapshot());
}
