//! One task that writes webhook deliveries to the store, committing every write waiting at
//! that moment in one transaction (group commit). A delivery is acknowledged only once its
//! row is committed, so durability is kept while a burst costs one commit, not hundreds.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::error::{AppError, AppResult};
use crate::store::{DeliveryWrite, Store};

/// Most writes committed together.
const BATCH: usize = 512;

type Request = (DeliveryWrite, oneshot::Sender<AppResult<bool>>);

/// A handle on the writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct DeliveryWriter {
    tx: mpsc::Sender<Request>,
    /// Delivery retries started by this process (automatic and by hand), for `/metrics`.
    pub retries: Arc<AtomicU64>,
}

impl DeliveryWriter {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Store) -> DeliveryWriter {
        let (tx, mut rx) = mpsc::channel::<Request>(4 * BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let writes: Vec<DeliveryWrite> = batch.iter().map(|(w, _)| w.clone()).collect();
                match store.write_deliveries(&writes).await {
                    Ok(results) => {
                        for ((_, reply), result) in batch.drain(..).zip(results) {
                            let _ = reply.send(Ok(result));
                        }
                    }
                    Err(e) => {
                        for (_, reply) in batch.drain(..) {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        DeliveryWriter {
            tx,
            retries: Arc::default(),
        }
    }

    /// Queues a write and waits until it is committed.
    pub async fn write(&self, write: DeliveryWrite) -> AppResult<bool> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((write, reply))
            .await
            .map_err(|_| AppError::internal("the delivery writer stopped"))?;
        answer
            .await
            .map_err(|_| AppError::internal("the delivery writer stopped"))?
    }
}
