# One image for every TradeLedger process; the command picks the process.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY commands ./commands
COPY projections ./projections
COPY adapters ./adapters
COPY dashboard ./dashboard
RUN pip install . && useradd --create-home tradeledger
USER tradeledger
ENTRYPOINT ["tradeledger"]
CMD ["api", "--host", "0.0.0.0"]
