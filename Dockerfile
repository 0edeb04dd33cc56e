FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir ".[speech]"
EXPOSE 4573 8080
CMD ["callserver", "run", "--config", "/app/callserver.example.toml"]
