use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use wsp_runtime::{CallContext, Client, Server, ServiceError};

// One module per schema package, imports included, named after the package: generated code
// refers to other packages as `super::shapes::Point`.
pub mod shapes {
    wsp_runtime::include_schema!("shapes");
}
pub mod plot {
    wsp_runtime::include_schema!("plot");
}

use plot::{Plotter, PlotterClient, PlotterServer};
use shapes::Point;

struct Plot;

impl Plotter for Plot {
    async fn centroid(&self, _ctx: CallContext, points: Vec<Point>) -> Result<Point, ServiceError> {
        let n = points.len().max(1) as f64;
        let x = points.iter().map(|p| p.x).sum::<f64>() / n;
        let y = points.iter().map(|p| p.y).sum::<f64>() / n;
        Ok(Point { x, y })
    }

    fn count(
        self: Arc<Self>,
        _ctx: CallContext,
        to: u32,
    ) -> impl Stream<Item = Result<u32, ServiceError>> + Send + 'static {
        futures_util::stream::iter((1..=to).map(Ok))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder()
        .service(PlotterServer::new(Plot).into_service())
        .bind("127.0.0.1:0")
        .await?;

    // `first-day serve`: serve until Ctrl-C or SIGTERM, then close the connections gracefully.
    if std::env::args().nth(1).as_deref() == Some("serve") {
        println!("serving on {}", server.url());
        server.serve_until(wsp_runtime::shutdown_signal()).await;
        return Ok(());
    }

    let client = Client::builder(server.url()).build();
    client.connect().await?;
    let plotter = PlotterClient::from_caller(client.caller());

    let c = plotter
        .centroid(vec![Point { x: 0.0, y: 0.0 }, Point { x: 4.0, y: 2.0 }])
        .await?;
    println!("centroid {} {}", c.x, c.y);

    let mut counted = Vec::new();
    let mut items = plotter.count(3);
    while let Some(item) = items.next().await {
        counted.push(item?);
    }
    println!("count {counted:?}");

    client.close(1000, "bye").await?;
    server.close().await;
    Ok(())
}
